"""One stack per stage: the Chalice app (chalice.cdk) and everything around it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import (
    CfnOutput,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Tags,
)
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_wafv2 as wafv2
from aws_cdk import aws_xray as xray
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.auth.principal import ROLES
from chalicelib.channels import registry
from chalicelib.operate import output_key
from chalicelib.settings import DEPLOYED_SECRETS
from chalicelib.store.resources import (
    ATTACHMENTS_CORS,
    MAX_RECEIVES,
    OUTBOX_INDEX,
    OUTBOX_INDEX_ATTRIBUTES,
    ROUTING_INDEX,
    dead_letter_queue_name,
)
from chalicelib.store.supervisor_feed import STREAM_FILTERS
from switchboard_infra import monitoring, webhooks
from switchboard_infra.functions import (
    CONSUME_ACTIONS,
    EVENT_SOURCES,
    FUNCTIONS,
    ITEM_ACTIONS,
    SEND_ACTIONS,
    STREAM_ACTIONS,
    STREAM_EVENT_SOURCES,
    VISIBILITY_TIMEOUT,
    Function,
)
from switchboard_infra.package import lean_sam_package
from switchboard_infra.scans import lint_ignore, skip
from switchboard_infra.stages import ROOT, Stage

# Logical ids `chalice package` gives the APIs (kept: preserve_logical_ids).
REST_API = "RestAPI"
WEBSOCKET_API = "WebsocketAPI"
WEBSOCKET_STAGE = "WebsocketAPIStage"
# The widget's unsigned POSTs (API Gateway resource paths, "/" escaped as "~1"): throttled below the rest of the API.
WIDGET_POSTS = ("/~1widget~1messages", "/~1widget~1offline", "/~1widget~1attachments")
ATTACHMENT_DAYS = 90  # how long the widget's uploads are kept (S3 lifecycle)
# The attribute DynamoDB expires items by (replay guards: store/replay.py).
TTL_ATTRIBUTE = "expires_at"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
SECRET_FREE_ACCESS_LOG = {
    # No query string, no headers: `?token=` signs agents in and Meta's verify token arrives in the query.
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
}


class LeanChalice(Chalice):
    """chalice.cdk's construct, its package made what ships (switchboard_infra/package.py) before it becomes
    the functions' code asset: no local stack, CLI or demo; compiled bytecode."""

    def _package_app(self) -> None:
        super()._package_app()
        lean_sam_package(Path(self._sam_package_dir))


class SwitchboardStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"Switchboard omnichannel routing ({stage.name})", **kwargs)
        self.stage = stage
        Tags.of(self).add("app", "switchboard")
        Tags.of(self).add("stage", stage.name)
        retain = RemovalPolicy.RETAIN if stage.production else RemovalPolicy.DESTROY

        self.data_table = self._table("DataTable", stage.environment["SWITCHBOARD_DATA_TABLE"], retain, ttl=True)
        # The transactional outbox's sparse index: outbound messages recorded but not yet claimed.
        self.data_table.add_global_secondary_index(
            index_name=OUTBOX_INDEX,
            partition_key=dynamodb.Attribute(name="pending_send", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="pending_since", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(OUTBOX_INDEX_ATTRIBUTES),
        )
        # Its stream feeds the supervisor's live view (on_routing_change; chalicelib/agents/live.py).
        self.routing_table = self._table(
            "RoutingTable",
            stage.environment["SWITCHBOARD_ROUTING_TABLE"],
            retain,
            ttl=True,
            stream=dynamodb.StreamViewType.NEW_IMAGE,
        )
        self.routing_table.add_global_secondary_index(
            index_name=ROUTING_INDEX,
            partition_key=dynamodb.Attribute(name="gsi1pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="gsi1sk", type=dynamodb.AttributeType.STRING),
        )
        self.queue_names = stage.queue_names
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for key, name in self.queue_names.items():
            self._queue(key, name, fifo=name.endswith(".fifo"))

        self.user_pool, self.user_pool_client = self._user_pool(retain)
        self.attachments = self._attachments_bucket(retain)
        self.routing_config_parameter = f"{stage.ssm_prefix}/routing-config"
        self.log_groups = {
            f.name: logs.LogGroup(
                self,
                f"{f.logical_id}Logs",
                log_group_name=f"/switchboard/{stage.name}/{f.name}",
                retention=LOG_RETENTION,
                removal_policy=retain,
            )
            for f in FUNCTIONS
        }
        self.roles = {f.name: self._role(f) for f in FUNCTIONS}
        self.app = LeanChalice(self, "App", source_dir=str(ROOT), stage_config=self._chalice_config())
        self.webhook_api = webhooks.add(
            self,
            name=f"{stage.prefix}-webhooks",
            function_arn=self.app.get_resource("APIHandler").get_att("Arn").to_string(),
            rate=stage.api_rate,
            burst=stage.api_burst,
            log_retention=LOG_RETENTION,
        )
        self.webhook_url = self.webhook_api.url
        self._wire_functions()
        self._harden_apis()
        self.alarm_topic = monitoring.add(self)
        self._outputs()

    # --- storage ---------------------------------------------------------------------------------------------

    def _table(
        self,
        construct_id: str,
        name: str,
        removal: RemovalPolicy,
        *,
        ttl: bool,
        stream: dynamodb.StreamViewType | None = None,
    ) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            construct_id,
            table_name=name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=TTL_ATTRIBUTE if ttl else None,
            stream=stream,
            deletion_protection=self.stage.production,
            removal_policy=removal,
        )
        skip(table, "CKV_AWS_119", "encrypted at rest with the AWS managed key; a customer managed key is optional")
        return table

    def _queue(self, key: str, name: str, fifo: bool) -> None:
        dead_letters = sqs.Queue(
            self,
            f"{key.capitalize()}DeadLetters",
            queue_name=dead_letter_queue_name(name),
            fifo=fifo or None,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        queue = sqs.Queue(
            self,
            f"{key.capitalize()}Queue",
            queue_name=name,
            fifo=fifo or None,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=MAX_RECEIVES),
        )
        for encrypted in (queue, dead_letters):
            skip(encrypted, "CKV_AWS_27", "encrypted at rest with SQS-managed keys (SSE-SQS); no KMS calls per message")
        self.queues[key] = queue
        self.dead_letter_queues[key] = dead_letters

    # --- sign-in ---------------------------------------------------------------------------------------------

    def _user_pool(self, removal: RemovalPolicy) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
        pool = cognito.UserPool(
            self,
            "Agents",
            user_pool_name=f"{self.stage.prefix}-agents",
            # Admins invite agents; nobody signs themselves up to a contact centre.
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            # The agent id the routing table knows this person by (falls back to the user name).
            custom_attributes={"agent_id": cognito.StringAttribute(min_len=1, max_len=64, mutable=True)},
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_digits=True, require_lowercase=True, require_uppercase=True
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=removal,
        )
        # Cognito's precedence: lower wins; the most powerful role first.
        for precedence, role in enumerate(reversed(ROLES)):
            cognito.CfnUserPoolGroup(
                self,
                f"{role.capitalize()}Group",
                user_pool_id=pool.user_pool_id,
                group_name=role,
                precedence=precedence,
                description=f"Switchboard {role}s",
            )
        client = pool.add_client(
            "Console",
            user_pool_client_name=f"{self.stage.prefix}-console",
            generate_secret=False,
            # The console signs in with USER_PASSWORD_AUTH (over TLS, straight to Cognito); SRP for other clients.
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            # About one shift; then the agent signs in again.
            refresh_token_validity=Duration.hours(12),
            # Only an admin sets custom:agent_id (AdminUpdateUserAttributes); the console may read it.
            write_attributes=cognito.ClientAttributes().with_standard_attributes(email=True, fullname=True),
        )
        return pool, client

    def _attachments_bucket(self, removal: RemovalPolicy) -> s3.Bucket:
        """Files widget visitors attach: private, uploaded by presigned POST from any site, kept 90 days. A stage that
        is destroyed with its data (not production) empties the bucket first, or CloudFormation cannot delete it."""
        bucket = s3.Bucket(
            self,
            "Attachments",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST],
                    allowed_origins=ATTACHMENTS_CORS["AllowedOrigins"],
                    allowed_headers=ATTACHMENTS_CORS["AllowedHeaders"],
                    max_age=ATTACHMENTS_CORS["MaxAgeSeconds"],
                )
            ],
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(ATTACHMENT_DAYS))],
        )
        skip(bucket, "CKV_AWS_18", "visitors' uploads are authorised one by one by presigned policies")
        skip(bucket, "CKV_AWS_21", "an upload is never overwritten: each has its own random key")
        skip(bucket, "CKV_AWS_145", "encrypted at rest with S3's managed key; a customer managed key is optional")
        skip(bucket, "CKV2_AWS_62", "nothing reacts to an upload: the message that names it is the event")
        cleaner = self.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
        handler = cleaner.node.try_find_child("Handler") if cleaner is not None else None
        if handler is not None:  # CDK's own function that empties the bucket when the stack is destroyed
            lint_ignore(handler, "W3005", "CDK writes the DependsOn on its role beside the GetAtt")
            skip(handler, "CKV_AWS_116", "CloudFormation calls it and waits for its answer: a failure fails the delete")
            skip(handler, "CKV_AWS_117", "reaches only the S3 API; no VPC resources")
            skip(handler, "CKV_AWS_115", "runs once, when the stack is destroyed")
        return bucket

    # --- functions -------------------------------------------------------------------------------------------

    def _role(self, function: Function) -> iam.Role:
        """The function's own role; its policy is inline so it exists before Lambda checks the event source."""
        tables = [
            self.data_table.table_arn,
            f"{self.data_table.table_arn}/index/*",
            self.routing_table.table_arn,
            f"{self.routing_table.table_arn}/index/*",
        ]
        statements = [
            iam.PolicyStatement(
                sid="OwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_groups[function.name].log_group_arn],
            ),
            iam.PolicyStatement(sid="Items", actions=list(ITEM_ACTIONS), resources=tables),
            iam.PolicyStatement(
                sid="SendToQueues", actions=list(SEND_ACTIONS), resources=[q.queue_arn for q in self.queues.values()]
            ),
            iam.PolicyStatement(
                sid="StageParameters",
                actions=["ssm:GetParameter", "ssm:GetParameters"],
                resources=[self._parameter_arn(f"{self.stage.ssm_prefix}/*")],
            ),
            iam.PolicyStatement(
                sid="PushToAgents",
                actions=["execute-api:ManageConnections"],
                resources=[
                    Fn.sub(
                        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                        f"${{{WEBSOCKET_API}}}/{self.stage.api_gateway_stage}/POST/@connections/*"
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="Traces",
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                # X-Ray has no resource-level permissions.
                resources=["*"],
            ),
        ]
        if function.consumes:
            statements.append(
                iam.PolicyStatement(
                    sid="ConsumeOwnQueue",
                    actions=list(CONSUME_ACTIONS),
                    resources=[self.queues[function.consumes].queue_arn],
                )
            )
        if function.reads_routing_stream:
            statements.append(
                iam.PolicyStatement(
                    sid="ReadRoutingStream",
                    actions=list(STREAM_ACTIONS),
                    resources=[self.routing_table.table_stream_arn or ""],
                )
            )
        if function.name == "api_handler":
            # The widget's presigned POSTs and reads (HEAD, presigned GETs) are signed with this role.
            statements.append(
                iam.PolicyStatement(
                    sid="WidgetAttachments",
                    actions=["s3:PutObject", "s3:GetObject"],
                    resources=[self.attachments.arn_for_objects("widget/*")],
                )
            )
        if function.writes_routing_config:
            statements.append(
                iam.PolicyStatement(
                    sid="WriteRoutingConfig",
                    actions=["ssm:PutParameter"],
                    resources=[self._parameter_arn(self.routing_config_parameter)],
                )
            )
        if function.confirms_sns and self.stage.sns_topic_arns:
            statements.append(
                iam.PolicyStatement(
                    sid="ConfirmMailTopics",
                    actions=["sns:ConfirmSubscription"],
                    resources=list(self.stage.sns_topic_arns),
                )
            )
        if function.sends_email:
            statements.append(
                iam.PolicyStatement(
                    sid="SendEmail",
                    actions=["ses:SendEmail", "ses:SendRawEmail"],
                    resources=[
                        Fn.sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"),
                        Fn.sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/*"),
                    ],
                )
            )
        role = iam.Role(
            self,
            f"{function.logical_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Switchboard {self.stage.name}: {function.name}",
            inline_policies={"switchboard": iam.PolicyDocument(statements=statements)},
        )
        skip(role, "CKV_AWS_111", "the only Resource '*' is X-Ray's, which has no resource-level permissions")
        return role

    def _api_url(self, scheme: str, api: str) -> str:
        """API Gateway's own URL of one of the packaged APIs (by logical id), with the stage."""
        return Fn.sub(
            f"{scheme}://${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{self.stage.api_gateway_stage}"
        )

    def _parameter_arn(self, name: str) -> str:
        return Fn.sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter" + name)

    def _chalice_config(self) -> dict[str, Any]:
        """Chalice's stage configuration: settings every function reads, a role and a timeout each."""
        stage = self.stage
        environment = {
            **stage.environment,
            # Plain names, not tokens: Chalice reads them at import time into its SQS event sources' Fn::Sub.
            "SWITCHBOARD_ROUTING_QUEUE": self.queue_names["routing"],
            "SWITCHBOARD_TIMER_QUEUE": self.queue_names["timers"],
            "SWITCHBOARD_OUTBOX_QUEUE": self.queue_names["outbox"],
            "SWITCHBOARD_ROUTING_CONFIG_PARAMETER": self.routing_config_parameter,
            "COGNITO_ISSUER": self.user_pool.user_pool_provider_url,
            "COGNITO_CLIENT_ID": self.user_pool_client.user_pool_client_id,
            "POWERTOOLS_METRICS_NAMESPACE": f"Switchboard/{stage.name}",
        }
        if stage.public_base_url:
            environment["PUBLIC_BASE_URL"] = stage.public_base_url
        if stage.sns_topic_arns:
            environment["SNS_TOPIC_ARNS"] = ",".join(stage.sns_topic_arns)
        environment.update(dict(stage.settings))
        return {
            "api_gateway_stage": stage.api_gateway_stage,
            "api_gateway_endpoint_type": "REGIONAL",
            "manage_iam_role": False,
            # Chalice wants one role here; _wire_functions gives each function its own (Chalice reads per-function
            # settings only from .chalice/config.json, not from this configuration).
            "iam_role_arn": self.roles["api_handler"].role_arn,
            # Active (every function) only when the stage traces everything; else PassThrough (see _trace_sampling).
            "xray": stage.tracing_mode == "Active",
            "lambda_memory_size": 512,
            "environment_variables": environment,
        }

    def _wire_functions(self) -> None:
        """What `chalice package` cannot say: our queues, partial batch responses, log groups, pushing."""
        websocket_endpoint = self._api_url("https", WEBSOCKET_API)
        for function in FUNCTIONS:
            resource = self.app.get_resource(function.logical_id)
            resource.add_override("Properties.Role", self.roles[function.name].role_arn)
            resource.add_override("Properties.Timeout", function.timeout)
            variables = "Properties.Environment.Variables"
            resource.add_override(f"{variables}.WEBSOCKET_MANAGEMENT_ENDPOINT", websocket_endpoint)
            if function.name == "api_handler":
                # What /auth/options hands the console, and what its CSP lets it connect to (no cycle: the
                # WebSocket API names only the WebSocket handlers, not this function).
                resource.add_override(f"{variables}.WEBSOCKET_URL", self._api_url("wss", WEBSOCKET_API))
                resource.add_override(f"{variables}.SWITCHBOARD_ATTACHMENTS_BUCKET", self.attachments.bucket_name)
            if not self.stage.public_base_url and function.name != "api_handler":
                # The outbox names its status callback URL (on the webhooks' HTTP API); the API handler takes the
                # URL a request came in on (it cannot name its own APIs: their definitions name the function).
                resource.add_override(f"{variables}.PUBLIC_BASE_URL", self.webhook_url)
            # JSON, so Lambda filters by level (README, "Logs"): the app's lines at the stage's LOG_LEVEL (EMF lines
            # have no level and count as INFO, so never above INFO); Lambda's START/REPORT lines at the stage's
            # SWITCHBOARD_SYSTEM_LOG_LEVEL (WARN drops them).
            resource.add_override(
                "Properties.LoggingConfig",
                {
                    "LogGroup": self.log_groups[function.name].log_group_name,
                    "LogFormat": "JSON",
                    "ApplicationLogLevel": self.stage.application_log_level,
                    "SystemLogLevel": self.stage.system_log_level,
                },
            )
            if function.consumes:
                queue = self.queues[function.consumes]
                event = f"Properties.Events.{EVENT_SOURCES[function.logical_id]}.Properties"
                resource.add_override(f"{event}.Queue", queue.queue_arn)
                # Chalice never sets this; without it Lambda ignores batchItemFailures and retries whole batches.
                resource.add_override(f"{event}.FunctionResponseTypes", ["ReportBatchItemFailures"])
                if queue.fifo:
                    resource.add_deletion_override(f"{event}.MaximumBatchingWindowInSeconds")
            if function.reads_routing_stream:
                self._wire_stream(resource, f"Properties.Events.{STREAM_EVENT_SOURCES[function.logical_id]}.Properties")
            skip(
                resource,
                "CKV_AWS_116",
                "SQS-fed functions fail into their queue's dead-letter queue; the others are synchronous or on a "
                "one-minute schedule that simply runs again",
            )
            skip(resource, "CKV_AWS_117", "reaches only AWS APIs and the providers' public APIs; no VPC resources")
            skip(resource, "CKV_AWS_115", "concurrency follows traffic; throttling lives on the APIs and WAF")
            skip(resource, "CKV_AWS_173", "environment holds names and URLs only; secrets are read from SSM")

    def _wire_stream(self, resource: Any, event: str) -> None:
        """The supervisor's live view: invoked only for the items it shows (the same filters the handler applies),
        batched over a second; a view more than a minute old is not worth retrying, nor is a batch retried for long
        (it would hold the shard's newer changes back)."""
        resource.add_override(f"{event}.Stream", self.routing_table.table_stream_arn)
        resource.add_override(
            f"{event}.FilterCriteria", {"Filters": [{"Pattern": json.dumps(p)} for p in STREAM_FILTERS]}
        )
        resource.add_override(f"{event}.MaximumRecordAgeInSeconds", 60)
        resource.add_override(f"{event}.MaximumRetryAttempts", 2)
        resource.add_override(f"{event}.BisectBatchOnFunctionError", True)

    def _harden_apis(self) -> None:
        """Access logs without query strings, throttling, tracing, and WAF in front of the REST API."""
        rest_logs = logs.LogGroup(self, "RestApiAccessLogs", retention=LOG_RETENTION)
        rest = self.app.get_resource(REST_API)
        rest.add_override("Properties.TracingEnabled", self.stage.trace_percent > 0)
        if self.stage.trace_percent > 0:
            self._trace_sampling()
        else:
            skip(
                rest,
                "CKV_AWS_73",
                "the stage's SWITCHBOARD_TRACE_PERCENT is 0: tracing off by choice (README, Traces (X-Ray))",
            )
        rest.add_override(
            "Properties.AccessLogSetting",
            {
                "DestinationArn": rest_logs.log_group_arn,
                "Format": _json_format(
                    {**SECRET_FREE_ACCESS_LOG, "method": "$context.httpMethod", "resource": "$context.resourcePath"}
                ),
            },
        )
        rest.add_override(
            "Properties.MethodSettings",
            [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": self.stage.api_rate,
                    "ThrottlingBurstLimit": self.stage.api_burst,
                    "MetricsEnabled": True,
                },
                # The widget's are the only endpoints anyone on the internet can post to unsigned.
                *(
                    {
                        "ResourcePath": path,
                        "HttpMethod": "POST",
                        "ThrottlingRateLimit": self.stage.widget_rate,
                        "ThrottlingBurstLimit": 2 * self.stage.widget_rate,
                    }
                    for path in WIDGET_POSTS
                ),
            ],
        )
        skip(rest, "CKV_AWS_120", "answers are per caller and must not be cached")
        skip(rest, "CKV_AWS_59", "webhooks are verified by the providers' signatures, agents by Cognito tokens")
        # API Gateway writes access logs through one role per account and region.
        push_role = iam.Role(
            self,
            "ApiGatewayLogsRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
            ],
        )
        account = apigateway.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=push_role.role_arn)
        rest.add_override("DependsOn", [account.logical_id])

        ws_logs = logs.LogGroup(self, "WebSocketAccessLogs", retention=LOG_RETENTION)
        websocket_stage = self.app.get_resource(WEBSOCKET_STAGE)
        websocket_stage.add_override(
            "Properties.AccessLogSettings",
            {
                "DestinationArn": ws_logs.log_group_arn,
                "Format": _json_format(
                    {
                        **SECRET_FREE_ACCESS_LOG,
                        "eventType": "$context.eventType",
                        "routeKey": "$context.routeKey",
                        "connectionId": "$context.connectionId",
                    }
                ),
            },
        )
        websocket_stage.add_override(
            "Properties.DefaultRouteSettings",
            {"ThrottlingRateLimit": self.stage.api_rate, "ThrottlingBurstLimit": self.stage.api_burst},
        )
        websocket_stage.add_override("DependsOn", [account.logical_id])
        for log_group in (rest_logs, ws_logs, *self.log_groups.values()):
            skip(log_group, "CKV_AWS_158", "encrypted by CloudWatch Logs; bodies and secrets never reach the logs")

        acl = wafv2.CfnWebACL(
            self,
            "Firewall",
            name=f"{self.stage.prefix}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{self.stage.prefix}-api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="KnownBadInputs",
                    priority=0,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name="AWSManagedRulesKnownBadInputsRuleSet"
                        )
                    ),
                    visibility_config=_visibility("known-bad-inputs"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="WidgetPostsPerIp",
                    priority=1,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=self.stage.widget_posts_per_ip,
                            aggregate_key_type="IP",
                            # The widget's POSTs only (messages, the offline form): its reads (GETs) would
                            # otherwise count too, and an office of open widgets behind one IP get blocked.
                            scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                                and_statement=wafv2.CfnWebACL.AndStatementProperty(
                                    statements=[
                                        _byte_match("method", "EXACTLY", "POST", "NONE"),
                                        _byte_match("uri_path", "CONTAINS", "/widget/", "LOWERCASE"),
                                    ]
                                )
                            ),
                        )
                    ),
                    visibility_config=_visibility("widget-posts-per-ip"),
                ),
            ],
        )
        skip(
            acl,
            "CKV2_AWS_31",
            "WAF logs would hold query strings and headers: Meta's verify token, agents' sign-in tokens, signatures",
        )
        wafv2.CfnWebACLAssociation(
            self,
            "FirewallOnRestApi",
            web_acl_arn=acl.attr_arn,
            # SAM turns ${RestAPI.Stage} into a reference to the stage it creates, so the stage comes first.
            resource_arn=Fn.sub(
                f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/restapis/${{{REST_API}}}/stages/"
                f"${{{REST_API}.Stage}}"
            ),
        )

    def _trace_sampling(self) -> None:
        """The share of REST requests X-Ray traces: API Gateway samples by this rule, and the functions follow.

        No reservoir: X-Ray's default rule traces the first request of every second before its rate, which at a
        contact centre's volume is nearly every request. API Gateway names the stage ``<API name>/<stage>``; dev's
        and prod's APIs share that name, so the rule also names this API's stage by its ARN.
        """
        stage = self.stage
        xray.CfnSamplingRule(
            self,
            "RestApiTraceSampling",
            sampling_rule=xray.CfnSamplingRule.SamplingRuleProperty(
                rule_name=f"{stage.prefix}-api",
                priority=1000,  # before the account's Default (10000)
                fixed_rate=stage.trace_percent / 100,
                reservoir_size=0,
                service_name=stage.rest_api_service_name,
                service_type="AWS::ApiGateway::Stage",
                resource_arn=Fn.sub(
                    f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/restapis/${{{REST_API}}}/stages/"
                    f"{stage.api_gateway_stage}"
                ),
                host="*",
                http_method="*",
                url_path="*",
                version=1,
            ),
        )

    # --- outputs ---------------------------------------------------------------------------------------------

    def _outputs(self) -> None:
        base = self.stage.public_base_url or self._api_url("https", REST_API)
        # Providers get the webhooks' HTTP API, unless a custom domain (PUBLIC_BASE_URL) fronts the REST API.
        hooks = self.stage.public_base_url or self.webhook_url
        CfnOutput(self, "ApiUrl", value=base, description="REST API: agent API, console, widget")
        CfnOutput(self, "WebhookApiUrl", value=hooks, description="Where providers post (HTTP API, signed webhooks)")
        CfnOutput(self, "ConsoleUrl", value=Fn.join("", [base, "/console"]), description="The agent console")
        CfnOutput(
            self,
            "WebSocketUrl",
            value=self._api_url("wss", WEBSOCKET_API),
            description="Agents' live connection (the console learns it from /auth/options)",
        )
        for adapter in registry.CHANNELS:
            CfnOutput(
                self,
                output_key(adapter.name),
                value=Fn.join("", [hooks, adapter.path]),
                description=f"Webhook URL to give {adapter.name}",
            )
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.user_pool_client.user_pool_client_id)
        CfnOutput(
            self,
            "SecretParameters",
            value=" ".join(f"{self.stage.ssm_prefix}/{name}" for name in DEPLOYED_SECRETS),
            description="SecureString parameters to set (switchboard secrets set NAME --stage ...)",
        )
        CfnOutput(self, "RoutingConfigParameter", value=self.routing_config_parameter)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        CfnOutput(
            self,
            "DashboardUrl",
            value=Fn.sub(
                "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}#dashboards:name="
                + monitoring.dashboard_name(self.stage)
            ),
        )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False
    )


def _byte_match(field: str, constraint: str, value: str, transformation: str) -> wafv2.CfnWebACL.StatementProperty:
    """One WAF byte match on a part of the request (``method``, ``uri_path``)."""
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(**{field: {}}),
            positional_constraint=constraint,
            search_string=value,
            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type=transformation)],
        )
    )


def _json_format(fields: dict[str, str]) -> str:
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in fields.items()) + "}"
