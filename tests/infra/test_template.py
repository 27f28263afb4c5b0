"""What the deployed stack must be, read off the synthesized CloudFormation templates of dev and prod."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from chalicelib.auth.principal import ROLES
from chalicelib.channels import registry
from chalicelib.operate import output_key
from chalicelib.settings import DEPLOYED_SECRETS, SECRET_NAMES, get_settings, trace_percent
from chalicelib.stages import tracing_mode
from chalicelib.store.resources import MAX_RECEIVES, OUTBOX_INDEX, ROUTING_INDEX, table_definitions
from tests.infra.conftest import ROOT
from tests.infra.template import actions_of, ref, resources, wildcard_grants

pytestmark = pytest.mark.timeout(900)  # the first test waits for both syntheses

FUNCTIONS = {
    "APIHandler",
    "WebsocketConnect",
    "WebsocketMessage",
    "WebsocketDisconnect",
    "OnRoutingEvent",
    "OnTimer",
    "OnOutbox",
    "SweepOffers",
    "OnRoutingChange",
}
CONSUMERS = {"OnRoutingEvent": "routing.fifo", "OnTimer": "timers", "OnOutbox": "outbox"}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::Serverless::Function")


def queue_named(template: dict[str, Any], suffix: str) -> str:
    (name,) = [
        n
        for n, q in resources(template, "AWS::SQS::Queue").items()
        if q["Properties"]["QueueName"].endswith(f"-{suffix}") and "RedrivePolicy" in q["Properties"]
    ]
    return name


def sqs_event_sources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{fn}.{event}": spec["Properties"]
        for fn, function in functions(template).items()
        for event, spec in function["Properties"].get("Events", {}).items()
        if spec["Type"] == "SQS"
    }


# --- the acceptance points -------------------------------------------------------------------------------------


def test_every_queue_has_a_dead_letter_queue(template):
    queues = resources(template, "AWS::SQS::Queue")
    dead_letter_targets = {
        ref(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]): name
        for name, q in queues.items()
        if "RedrivePolicy" in q["Properties"]
    }
    assert len(dead_letter_targets) == 3  # routing, timers, outbox
    for name, queue in queues.items():
        properties = queue["Properties"]
        if name in dead_letter_targets:  # a dead-letter queue: keeps messages 14 days, same FIFO-ness
            source = queues[dead_letter_targets[name]]["Properties"]
            assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
            assert properties.get("FifoQueue", False) == source.get("FifoQueue", False)
            continue
        redrive = properties["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == MAX_RECEIVES, name
        assert ref(redrive["deadLetterTargetArn"]) in queues, name


def test_every_table_has_point_in_time_recovery_and_encryption(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert len(tables) == 2
    for name, table in tables.items():
        properties = table["Properties"]
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert properties["SSESpecification"]["SSEEnabled"] is True, name
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
    # Each table's indexes are the ones the app creates against moto (store/resources.py), key for key.
    declared = {
        tuple(i["IndexName"] for i in d["GlobalSecondaryIndexes"]): d["GlobalSecondaryIndexes"]
        for d in table_definitions(get_settings())
    }
    deployed = {
        tuple(i["IndexName"] for i in t["Properties"]["GlobalSecondaryIndexes"]): t["Properties"][
            "GlobalSecondaryIndexes"
        ]
        for t in tables.values()
    }
    assert sorted(deployed) == sorted(declared) == [(ROUTING_INDEX,), (OUTBOX_INDEX,)]
    for names, indexes in declared.items():
        for want, got in zip(indexes, deployed[names], strict=True):
            assert got["KeySchema"] == want["KeySchema"], names
            assert got["Projection"]["ProjectionType"] == want["Projection"]["ProjectionType"], names
            assert sorted(got["Projection"].get("NonKeyAttributes", [])) == sorted(
                want["Projection"].get("NonKeyAttributes", [])
            ), names
    # Replay guards expire by TTL (store/replay.py), and so do the routing table's decision and contact records.
    ttl = [t["Properties"].get("TimeToLiveSpecification") for t in tables.values()]
    assert ttl == [{"AttributeName": "expires_at", "Enabled": True}] * 2


def test_every_sqs_event_source_reports_batch_item_failures(template):
    sources = sqs_event_sources(template)
    assert {key.split(".")[0] for key in sources} == set(CONSUMERS)
    for key, source in sources.items():
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"], key
        # Fed by the stack's own queue, not by a name Chalice guessed at packaging time.
        function = key.split(".")[0]
        assert ref(source["Queue"]) == queue_named(template, CONSUMERS[function]), key


def test_no_iam_statement_grants_a_wildcard_data_plane_action(template):
    assert wildcard_grants(template) == []


def test_the_wildcard_check_catches_what_it_must(template):
    doctored = copy.deepcopy(template)
    role = next(iter(resources(doctored, "AWS::IAM::Role").values()))
    role["Properties"].setdefault("Policies", []).append(
        {
            "PolicyName": "too-much",
            "PolicyDocument": {
                "Statement": [
                    {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:::table/x"},
                    {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*"},
                    {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::bucket"},
                ]
            },
        }
    )
    assert len(wildcard_grants(doctored)) == 3


# --- functions and their permissions ---------------------------------------------------------------------------


def test_each_function_has_its_own_role_log_group_timeout_and_tracing(template):
    found = functions(template)
    assert set(found) == FUNCTIONS
    roles = [ref(f["Properties"]["Role"]) for f in found.values()]
    assert len(set(roles)) == len(FUNCTIONS)
    assert all(r in resources(template, "AWS::IAM::Role") for r in roles)
    log_groups = [ref(f["Properties"]["LoggingConfig"]["LogGroup"]) for f in found.values()]
    assert len(set(log_groups)) == len(FUNCTIONS)
    for name, function in found.items():
        properties = function["Properties"]
        # The mode follows the stage's trace percent, which the function reads too (tests/infra/test_tracing.py).
        assert properties["Tracing"] == tracing_mode(trace_percent(properties["Environment"]["Variables"])), name
        assert properties["Timeout"] <= 30, name  # under API Gateway's 29 s and the queues' visibility
    groups = resources(template, "AWS::Logs::LogGroup")
    assert all(groups[g]["Properties"]["RetentionInDays"] == 30 for g in log_groups)


def test_queue_visibility_outlasts_its_consumer_sixfold(template):
    found = functions(template)
    queues = resources(template, "AWS::SQS::Queue")
    for function, suffix in CONSUMERS.items():
        visibility = queues[queue_named(template, suffix)]["Properties"]["VisibilityTimeout"]
        assert visibility >= 6 * found[function]["Properties"]["Timeout"], function


def test_only_a_queues_consumer_may_receive_from_it(template):
    found = functions(template)
    roles = resources(template, "AWS::IAM::Role")
    receivers: dict[str, set[str]] = {}
    for name, function in found.items():
        granted = actions_of(roles[ref(function["Properties"]["Role"])])
        for resource in granted.get("sqs:ReceiveMessage", []):
            receivers.setdefault(str(ref(resource)), set()).add(name)
    assert receivers == {queue_named(template, suffix): {function} for function, suffix in CONSUMERS.items()}


def test_per_function_extras_go_only_where_needed(template):
    found = functions(template)
    roles = resources(template, "AWS::IAM::Role")
    by_function = {name: actions_of(roles[ref(f["Properties"]["Role"])]) for name, f in found.items()}
    # Nothing scans a table any more: agents are listed from the index (the one-off upgrade listing,
    # store.routing.index_agents, runs with the operator's credentials, not a function's).
    assert {n for n, granted in by_function.items() if "dynamodb:Scan" in granted} == set()
    assert {n for n, granted in by_function.items() if "ssm:PutParameter" in granted} == {"APIHandler"}
    # E-mail replies are sent from the agent's request (REST or WebSocket), the outbox Lambda retrying them.
    assert {n for n, granted in by_function.items() if "ses:SendEmail" in granted} == {
        "APIHandler",
        "WebsocketMessage",
        "OnOutbox",
    }
    # Every function: item actions on both tables and the routing index, reading the stage's parameters.
    tables = set(resources(template, "AWS::DynamoDB::Table"))
    for name, granted in by_function.items():
        assert {ref(r) for r in granted["dynamodb:UpdateItem"]} >= tables, name
        assert any("/index/*" in json.dumps(r) for r in granted["dynamodb:Query"]), name
        assert granted["ssm:GetParameter"], name


def test_mail_topics_are_confirmed_only_when_named(templates):
    def confirmers(template: dict[str, Any]) -> list[Any]:
        roles = resources(template, "AWS::IAM::Role")
        return [r for role in roles.values() for r in actions_of(role).get("sns:ConfirmSubscription", [])]

    assert confirmers(templates["dev"]) == []
    assert confirmers(templates["prod"]) == ["arn:aws:sns:eu-west-1:123456789012:inbound-mail"]
    env = functions(templates["prod"])["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["SNS_TOPIC_ARNS"] == "arn:aws:sns:eu-west-1:123456789012:inbound-mail"
    assert env["TWILIO_ACCOUNT_SID"] == "AC0123456789abcdef0123456789abcdef"
    assert env["EMAIL_FROM_ADDRESS"] == "support@example.com"
    dev_env = functions(templates["dev"])["OnOutbox"]["Properties"]["Environment"]["Variables"]
    assert "TWILIO_ACCOUNT_SID" not in dev_env and "SNS_TOPIC_ARNS" not in dev_env


# --- settings, secrets, sign-in --------------------------------------------------------------------------------


def test_stages_follow_the_chalice_config(templates):
    chalice = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage, template in templates.items():
        expected = chalice["stages"][stage]["environment_variables"]
        names = {t["Properties"]["TableName"] for t in resources(template, "AWS::DynamoDB::Table").values()}
        assert names == {expected["SWITCHBOARD_DATA_TABLE"], expected["SWITCHBOARD_ROUTING_TABLE"]}
        for function in functions(template).values():
            variables = function["Properties"]["Environment"]["Variables"]
            assert variables["SWITCHBOARD_SSM_PREFIX"] == expected["SWITCHBOARD_SSM_PREFIX"]
            assert variables["SWITCHBOARD_STAGE"] == stage
            assert variables["POWERTOOLS_METRICS_NAMESPACE"] == f"Switchboard/{stage}"
    prod_tables = resources(templates["prod"], "AWS::DynamoDB::Table").values()
    assert all(t["DeletionPolicy"] == "Retain" and t["Properties"]["DeletionProtectionEnabled"] for t in prod_tables)


def test_secrets_are_named_never_valued(template):
    # CloudFormation cannot hold a SecureString, and no secret goes in as a plain parameter: the operator sets them.
    assert resources(template, "AWS::SSM::Parameter") == {}
    for function in functions(template).values():
        assert not set(function["Properties"]["Environment"]["Variables"]) & set(SECRET_NAMES)
    prefix = functions(template)["APIHandler"]["Properties"]["Environment"]["Variables"]["SWITCHBOARD_SSM_PREFIX"]
    listed = template["Outputs"]["SecretParameters"]["Value"].split()
    assert listed == [f"{prefix}/{name}" for name in DEPLOYED_SECRETS]


def test_functions_know_their_queues_websocket_and_user_pool(template):
    pool = next(iter(resources(template, "AWS::Cognito::UserPool")))
    client = next(iter(resources(template, "AWS::Cognito::UserPoolClient")))
    queue_names = {q["Properties"]["QueueName"] for q in resources(template, "AWS::SQS::Queue").values()}
    for name, function in functions(template).items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["COGNITO_ISSUER"] == {"Fn::GetAtt": [pool, "ProviderURL"]}, name
        assert variables["COGNITO_CLIENT_ID"] == {"Ref": client}, name
        assert "${WebsocketAPI}" in variables["WEBSOCKET_MANAGEMENT_ENDPOINT"]["Fn::Sub"], name
        for key in ("SWITCHBOARD_ROUTING_QUEUE", "SWITCHBOARD_TIMER_QUEUE", "SWITCHBOARD_OUTBOX_QUEUE"):
            assert variables[key] in queue_names, (name, key)
    # The console connects only to the deployment's own WebSocket API (never to a ?ws= from the page's URL).
    api_handler = functions(template)["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api_handler["WEBSOCKET_URL"]["Fn::Sub"].startswith("wss://${WebsocketAPI}.execute-api."), api_handler
    # The API handler takes its public URL from the request; the outbox names it for Twilio's status callbacks.
    assert "PUBLIC_BASE_URL" not in functions(template)["APIHandler"]["Properties"]["Environment"]["Variables"]
    # Twilio's status callbacks are webhooks: they come in through the webhooks' HTTP API.
    outbox = functions(template)["OnOutbox"]["Properties"]["Environment"]["Variables"]
    assert outbox["PUBLIC_BASE_URL"]["Fn::Sub"][1] == {"Api": {"Ref": "WebhooksHttpApi"}}, outbox["PUBLIC_BASE_URL"]


def test_user_pool_has_the_three_role_groups_and_no_self_sign_up(template):
    groups = {g["Properties"]["GroupName"] for g in resources(template, "AWS::Cognito::UserPoolGroup").values()}
    assert groups == set(ROLES)
    pool = next(iter(resources(template, "AWS::Cognito::UserPool").values()))["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert {"Name": "agent_id", "AttributeDataType": "String", "Mutable": True} | {
        "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "64"}
    } in pool["Schema"]
    client = next(iter(resources(template, "AWS::Cognito::UserPoolClient").values()))["Properties"]
    assert client["GenerateSecret"] is False
    # What the console's sign-in (console.html) asks Cognito for.
    assert {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"} <= set(client["ExplicitAuthFlows"])
    assert "custom:agent_id" not in client["WriteAttributes"]


# --- the edges: APIs, logs, firewall ---------------------------------------------------------------------------


def test_access_logs_carry_no_query_strings_or_headers(template):
    rest = next(iter(resources(template, "AWS::Serverless::Api").values()))["Properties"]
    websocket = next(iter(resources(template, "AWS::ApiGatewayV2::Stage").values()))["Properties"]
    for fmt in (rest["AccessLogSetting"]["Format"], websocket["AccessLogSettings"]["Format"]):
        fields = json.loads(fmt)
        assert "requestId" in fields
        for value in fields.values():
            assert "querystring" not in value.lower() and "$input" not in value and "header" not in value.lower()
            assert value not in ("$context.path", "$context.requestOverride")


def test_apis_are_throttled_and_the_widget_more_so(template):
    rest = next(iter(resources(template, "AWS::Serverless::Api").values()))["Properties"]
    settings = {s["ResourcePath"]: s for s in rest["MethodSettings"]}
    for widget_post in ("/~1widget~1messages", "/~1widget~1offline"):
        assert settings[widget_post]["HttpMethod"] == "POST"
        assert settings["/*"]["ThrottlingRateLimit"] > settings[widget_post]["ThrottlingRateLimit"]
    websocket = next(iter(resources(template, "AWS::ApiGatewayV2::Stage").values()))["Properties"]
    assert websocket["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


def test_limits_follow_the_operators_context(templates):
    def limits(template: dict[str, Any]) -> tuple[int, int]:
        (acl,) = resources(template, "AWS::WAFv2::WebACL").values()
        rules = {r["Name"]: r for r in acl["Properties"]["Rules"]}
        rest = next(iter(resources(template, "AWS::Serverless::Api").values()))["Properties"]
        settings = {s["ResourcePath"]: s for s in rest["MethodSettings"]}
        return rules["WidgetPostsPerIp"]["Statement"]["RateBasedStatement"]["Limit"], settings["/*"][
            "ThrottlingRateLimit"
        ]

    assert limits(templates["dev"]) == (600, 200)  # the defaults
    assert limits(templates["prod"]) == (300, 500)  # -c widgetPostsPerIp=300 -c apiRate=500


def test_firewall_guards_the_rest_api_and_rate_limits_the_widget(template):
    (acl,) = resources(template, "AWS::WAFv2::WebACL").values()
    rules = {r["Name"]: r for r in acl["Properties"]["Rules"]}
    widget = rules["WidgetPostsPerIp"]["Statement"]["RateBasedStatement"]
    assert widget["AggregateKeyType"] == "IP"
    # Posts only: the widgets' reads (GET) behind one office IP must never get that IP blocked.
    matches = [s["ByteMatchStatement"] for s in widget["ScopeDownStatement"]["AndStatement"]["Statements"]]
    method = next(m for m in matches if "Method" in m["FieldToMatch"])
    path = next(m for m in matches if "UriPath" in m["FieldToMatch"])
    assert (method["SearchString"], method["PositionalConstraint"]) == ("POST", "EXACTLY")
    # Every widget POST (messages, the offline form) counts; agents' routes never contain /widget/.
    assert (path["SearchString"], path["PositionalConstraint"]) == ("/widget/", "CONTAINS")
    assert "KnownBadInputs" in rules
    (association,) = resources(template, "AWS::WAFv2::WebACLAssociation").values()
    assert "${RestAPI}" in association["Properties"]["ResourceArn"]["Fn::Sub"]


# --- alarms, dashboard, outputs --------------------------------------------------------------------------------


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"].split("-", 2)[2]: a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
    }


def test_alarms_watch_dead_letters_backlog_sla_and_every_function(template):
    found = alarms(template)
    queues = resources(template, "AWS::SQS::Queue")
    dead_letter_queues = {
        ref(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    watched = set()
    for key in ("routing", "timers", "outbox"):
        alarm = found[f"{key}-dead-letters"]
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        watched |= {ref(d["Value"]) for d in alarm["Dimensions"]}
    assert watched == dead_letter_queues
    backlog = found["routing-backlog"]
    assert backlog["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert {ref(d["Value"]) for d in backlog["Dimensions"]} == {queue_named(template, "routing.fifo")}
    sla = found["sla-breach-rate"]
    (expression,) = [m["Expression"] for m in sla["Metrics"] if "Expression" in m]
    assert "breached" in expression and "met" in expression
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in sla["Metrics"] if "MetricStat" in m}
    assert names == {"SLAMet", "SLABreached"}

    def function_of(alarm: dict[str, Any]) -> str | None:
        (dimension,) = alarm["Dimensions"]
        return ref(dimension["Value"]["Fn::Select"][1]["Fn::Split"][1])

    lambda_alarms = [a for a in found.values() if a.get("Namespace") == "AWS/Lambda"]
    assert {(function_of(a), a["MetricName"]) for a in lambda_alarms} == {
        (function, metric) for function in FUNCTIONS for metric in ("Errors", "Throttles")
    }
    assert all(a["AlarmActions"] and a["OKActions"] for a in found.values())


def test_alarm_topic_mails_the_operator_when_asked(templates):
    (topic,) = resources(templates["prod"], "AWS::SNS::Topic")
    (subscription,) = resources(templates["prod"], "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert subscription["Properties"]["Protocol"] == "email"
    assert ref(subscription["Properties"]["TopicArn"]) == topic
    assert resources(templates["dev"], "AWS::SNS::Subscription") == {}


def test_dashboard_shows_sla_queues_functions_and_api(template):
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in (
        "SLABreached",
        "WaitUntilAccept",
        "ApproximateAgeOfOldestMessage",
        "Errors",
        "Throttles",
        "5XXError",
    ):
        assert needle in body, needle


def test_outputs_name_every_webhook_url(template):
    outputs = template["Outputs"]
    for adapter in registry.CHANNELS:
        key = output_key(adapter.name)
        assert adapter.path in json.dumps(outputs[key]["Value"]), key
        assert '"Ref": "WebhooksHttpApi"' in json.dumps(outputs[key]["Value"]), (key, "providers post to the HTTP API")
    for key in ("ApiUrl", "ConsoleUrl", "WebSocketUrl", "UserPoolId", "UserPoolClientId", "DashboardUrl"):
        assert key in outputs


# --- the template deploys: no resource waits, through references, on itself -------------------------------------


def _references(node: Any, names: set[str]) -> set[str]:
    """The logical ids a piece of a template names: Ref, Fn::GetAtt and Fn::Sub's ${Name} / ${Name.Attr}."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found.update(part.split("}")[0].split(".")[0] for part in text.split("${")[1:])
                found |= _references(value[1:] if isinstance(value, list) else [], names)
            else:
                found |= _references(value, names)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item, names)
    return found & names


def _cycle(template: dict[str, Any]) -> list[str]:
    """A dependency cycle among the template's resources (first found), or []."""
    everything = template["Resources"]
    names = set(everything)
    edges = {
        name: _references(resource.get("Properties", {}), names) | set(_as_list(resource.get("DependsOn")))
        for name, resource in everything.items()
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str]:
        if name in done:
            return []
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        visiting.append(name)
        for target in sorted(edges.get(name, ())):
            if found := visit(target):
                return found
        visiting.pop()
        done.add(name)
        return []

    for name in sorted(edges):
        if found := visit(name):
            return found
    return []


def _as_list(value: Any) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def test_no_resource_depends_on_itself_through_references(template):
    """CloudFormation refuses a circular dependency, e.g. the REST API's function naming its own API's URL."""
    variables = functions(template)["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert "${WebsocketAPI}" in variables["WEBSOCKET_URL"]["Fn::Sub"]  # the console's URL: an edge, not a loop
    assert _cycle(template) == []


def test_the_cycle_check_catches_what_it_must(template):
    looped = copy.deepcopy(template)
    variables = looped["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    variables["REST_URL"] = {"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}
    assert "APIHandler" in _cycle(looped) and "RestAPI" in _cycle(looped)


def test_providers_post_to_an_http_api_that_carries_only_the_signed_webhooks(template):
    """The front door of README's "The front door": webhooks on an HTTP API ($1.00 a million, throttled, access
    logs), everything else on the REST API behind WAF."""
    (api_id, api), *others = resources(template, "AWS::ApiGatewayV2::Api").items()
    webhook_apis = [(i, a) for i, a in [(api_id, api), *others] if a["Properties"]["ProtocolType"] == "HTTP"]
    assert [i for i, _ in webhook_apis] == ["WebhooksHttpApi"]
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in resources(template, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["ApiId"] == {"Ref": "WebhooksHttpApi"}
    }
    expected = {f"{m} {a.path}" for a in registry.CHANNELS for m in a.methods}
    assert set(routes) == expected, "every webhook and nothing else: the widget and agents stay behind WAF"
    (integration_id, integration), *_ = [
        (i, r)
        for i, r in resources(template, "AWS::ApiGatewayV2::Integration").items()
        if r["Properties"]["ApiId"] == {"Ref": "WebhooksHttpApi"}
    ]
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    # 1.0 is the REST API's event shape, which Chalice routes (tests/integration/test_public_url.py).
    assert integration["Properties"]["PayloadFormatVersion"] == "1.0"
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": ["APIHandler", "Arn"]}
    for route in routes.values():
        assert route["Target"] == {"Fn::Join": ["/", ["integrations", {"Ref": integration_id}]]}
    (stage,) = [
        s["Properties"]
        for s in resources(template, "AWS::ApiGatewayV2::Stage").values()
        if s["Properties"]["ApiId"] == {"Ref": "WebhooksHttpApi"}
    ]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    throttling = stage["DefaultRouteSettings"]
    assert throttling["ThrottlingRateLimit"] > 0 and throttling["ThrottlingBurstLimit"] > 0
    log_format = stage["AccessLogSettings"]["Format"]
    assert "$context.requestId" in log_format and "$context.status" in log_format
    assert "querystring" not in log_format.lower() and "$context.path" not in log_format, "Meta's token is in the query"
    permissions = [
        p["Properties"]
        for p in resources(template, "AWS::Lambda::Permission").values()
        if "WebhooksHttpApi" in json.dumps(p["Properties"].get("SourceArn"))
    ]
    assert [p["FunctionName"] for p in permissions] == [{"Fn::GetAtt": ["APIHandler", "Arn"]}]
    assert permissions[0]["Principal"] == "apigateway.amazonaws.com"


def test_dashboard_shows_callers_wait_to_the_agent_and_abandonment_per_queue(template):
    """Issue 13 §7: a caller's wait to the moment the agent joins, abandonments and time to abandon per queue."""
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in ("WaitUntilAgent", "Abandoned", "TimeToAbandon"):
        assert needle in body, needle


def test_the_widgets_attachments_bucket_is_private_and_only_the_api_signs_for_it(template):
    (logical, bucket) = next(iter(resources(template, "AWS::S3::Bucket").items()))
    properties = bucket["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (cors,) = properties["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST"]  # visitors upload from businesses' sites; reads are presigned links
    assert properties["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90
    found = functions(template)
    env = found["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["SWITCHBOARD_ATTACHMENTS_BUCKET"] == {"Ref": logical}
    roles = resources(template, "AWS::IAM::Role")
    writers = {n for n, f in found.items() if "s3:PutObject" in actions_of(roles[ref(f["Properties"]["Role"])])}
    assert writers == {"APIHandler"}
    granted = actions_of(roles[ref(found["APIHandler"]["Properties"]["Role"])])["s3:PutObject"]
    assert all("/widget/*" in json.dumps(r) and logical in json.dumps(r) for r in granted)


def test_a_dev_stack_empties_its_attachments_bucket_when_destroyed_and_prod_keeps_it(templates):
    for stage, emptied in (("dev", True), ("prod", False)):
        template = templates[stage]
        (logical, bucket) = next(iter(resources(template, "AWS::S3::Bucket").items()))
        cleaners = [
            r
            for r in resources(template, "Custom::S3AutoDeleteObjects").values()
            if r["Properties"].get("BucketName") == {"Ref": logical}
        ]
        assert bool(cleaners) is emptied, stage
        assert bucket["DeletionPolicy"] == ("Delete" if emptied else "Retain"), stage
