# Switchboard. `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The console softphone's npm packages (@twilio/voice-sdk, pinned in chalicelib/console/vendor) install with it.
SOFTPHONE := chalicelib/console/vendor
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt infra/requirements.txt pyproject.toml $(SOFTPHONE)/package-lock.json | cksum | cut -d' ' -f1)
# Template scanners (cfn-lint, checkov) live apart: checkov pins a boto3 the app cannot take.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed-$(shell cat infra/requirements-scan.txt | cksum | cut -d' ' -f1)
# The CDK command line, pinned in infra/package.json (aws-cdk 2.1148.x).
CDK_STAMP := infra/node_modules/.installed-$(shell cat infra/package-lock.json | cksum | cut -d' ' -f1)
CDK := cd infra && AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$${AWS_REGION:-us-east-1}} npx --no-install cdk
STAGE ?= dev
# `make test` runs pytest on every core (pytest-xdist; a test module stays on one worker): PYTEST_WORKERS=1 for one.
PYTEST_WORKERS ?= auto
# Operator choices for the stack (README, Deploy): make deploy STAGE=prod ALARM_EMAIL=ops@example.com;
# any other context as CONTEXT="-c apiRate=500 -c widgetPostsPerIp=300"
CDK_CONTEXT := -c stage=$(STAGE) $(if $(ALARM_EMAIL),-c alarmEmail=$(ALARM_EMAIL)) \
	$(if $(PUBLIC_BASE_URL),-c publicBaseUrl=$(PUBLIC_BASE_URL)) $(if $(SNS_TOPIC_ARNS),-c snsTopicArns=$(SNS_TOPIC_ARNS)) \
	$(if $(TWILIO_ACCOUNT_SID),-c twilioAccountSid=$(TWILIO_ACCOUNT_SID)) \
	$(if $(TWILIO_API_KEY_SID),-c twilioApiKeySid=$(TWILIO_API_KEY_SID)) \
	$(if $(TWILIO_TWIML_APP_SID),-c twilioTwimlAppSid=$(TWILIO_TWIML_APP_SID)) \
	$(if $(EMAIL_FROM_ADDRESS),-c emailFromAddress=$(EMAIL_FROM_ADDRESS)) $(CONTEXT)
TEMPLATE = infra/cdk.out/switchboard-$(STAGE).template.json

.PHONY: demo local test chromium lint typecheck unit integration e2e rules-check synth scan deploy clean

$(STAMP): requirements.txt requirements-dev.txt infra/requirements.txt pyproject.toml $(SOFTPHONE)/package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	cd $(SOFTPHONE) && npm ci --no-audit --no-fund --loglevel=error
	rm -f $(VENV)/.installed-* && touch $(STAMP)

## demo: start the local stack, play 4 agents and 12 contacts on six channels, print SLA per queue and channel
demo: $(STAMP)
	$(PY) -m chalicelib.local.demo

## local: keep the local stack up (API http://127.0.0.1:8000, WebSocket ws://127.0.0.1:8001)
local: $(STAMP)
	$(PY) -m chalicelib.local

## test: lint, type-check, scan the CloudFormation templates, then every test (unit, integration with moto,
## end-to-end on the local stack, the template tests)
test: lint typecheck chromium scan
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; never `playwright install`.
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

## rules-check: validate the routing config (switchboard rules check FILE, default the deployed one)
RULES ?= chalicelib/routing/routing.yaml
rules-check: $(STAMP)
	$(VENV)/bin/switchboard rules check $(RULES)

$(SCAN_STAMP): infra/requirements-scan.txt
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-scan.txt
	rm -f $(SCAN_VENV)/.installed-* && touch $(SCAN_STAMP)

$(CDK_STAMP): infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund --loglevel=error
	rm -f infra/node_modules/.installed-* && touch $(CDK_STAMP)

## synth: write the CloudFormation template of a stage (STAGE=dev|prod) to infra/cdk.out/
synth: $(STAMP) $(CDK_STAMP)
	rm -rf infra/chalice.out
	$(CDK) synth switchboard-$(STAGE) $(CDK_CONTEXT) --quiet

## scan: synthesize dev and prod, then cfn-lint and checkov on both (suppressions are in the template, with reasons)
scan: $(STAMP) $(CDK_STAMP) $(SCAN_STAMP)
	for stage in dev prod; do \
		$(MAKE) --no-print-directory synth STAGE=$$stage && \
		$(SCAN_VENV)/bin/cfn-lint infra/cdk.out/switchboard-$$stage.template.json && \
		$(SCAN_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
			-f infra/cdk.out/switchboard-$$stage.template.json || exit 1; \
	done

## deploy: deploy a stage to the AWS account of your credentials (make deploy STAGE=prod ALARM_EMAIL=...)
deploy: $(STAMP) $(CDK_STAMP)
	rm -rf infra/chalice.out
	$(CDK) deploy switchboard-$(STAGE) $(CDK_CONTEXT) --require-approval broadening \
		--outputs-file cdk.out/outputs-$(STAGE).json
	$(VENV)/bin/switchboard setup --stage $(STAGE) --outputs infra/cdk.out/outputs-$(STAGE).json

## bench: cost per flow, routing reads per decision, cold imports, time to offer: bench/RESULTS.md, bench/results.json
.PHONY: bench
bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy app.py chalicelib
	cd infra && ../$(VENV)/bin/mypy cdk_app.py switchboard_infra

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e tests/local

clean:
	rm -rf $(VENV) $(SCAN_VENV) .pytest_cache .mypy_cache .ruff_cache infra/node_modules infra/cdk.out infra/chalice.out \
		$(SOFTPHONE)/node_modules
