"""Signing in to the console as a deployed stage does: through the Cognito user pool, from the browser.

The local stack runs with Cognito instead of development tokens: the pool, its app client and an invited
admin (a temporary password, as `aws cognito-idp admin-create-user` makes) live in moto's server, which also
publishes the pool's signing keys. The console asks Cognito itself (USER_PASSWORD_AUTH), is made to choose a
new password on first sign-in, and the API accepts the id token because it verifies it against the pool's keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests

from chalicelib import cli
from chalicelib.local.stack import LocalStack
from chalicelib.settings import reload_settings

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e
WAIT_MS = 20_000
TEMPORARY, CHOSEN = "Temp-Passw0rd!x", "Chosen-Passw0rd!42"


class Pool:
    id: str = ""
    client_id: str = ""


@pytest.fixture(scope="module")
def cognito_stack() -> Iterator[tuple[LocalStack, Pool]]:
    env = pytest.MonkeyPatch()
    pool = Pool()

    def create_pool() -> None:
        """As the stack does (groups, custom:agent_id, an app client with no secret), then invite an admin."""
        idp = boto3.client("cognito-idp")
        created = idp.create_user_pool(
            PoolName="switchboard-test-agents",
            Schema=[{"Name": "agent_id", "AttributeDataType": "String", "Mutable": True}],
            AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        )["UserPool"]
        pool.id = created["Id"]
        pool.client_id = idp.create_user_pool_client(
            UserPoolId=pool.id,
            ClientName="switchboard-test-console",
            GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        for group in ("agent", "supervisor", "admin"):
            idp.create_group(UserPoolId=pool.id, GroupName=group)
        idp.admin_create_user(
            UserPoolId=pool.id,
            Username="grace",
            TemporaryPassword=TEMPORARY,
            UserAttributes=[
                {"Name": "email", "Value": "grace@example.com"},
                {"Name": "custom:agent_id", "Value": "grace"},
            ],
            MessageAction="SUPPRESS",
        )
        idp.admin_add_user_to_group(UserPoolId=pool.id, Username="grace", GroupName="admin")
        assert cli.main(["agents", "create", "grace", "--name", "Grace Hopper"]) == 0  # the checklist's step
        region = idp.meta.region_name
        env.setenv("SWITCHBOARD_DEV_AUTH", "0")
        env.setenv("COGNITO_ISSUER", f"https://cognito-idp.{region}.amazonaws.com/{pool.id}")
        env.setenv("COGNITO_CLIENT_ID", pool.client_id)
        env.setenv("COGNITO_ENDPOINT", idp.meta.endpoint_url)  # moto's server: Cognito's API and the keys
        reload_settings()

    from app import app

    try:
        with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0, setup=create_pool) as running:
            yield running, pool
    finally:
        env.undo()
        reload_settings()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def test_first_sign_in_sets_a_password_and_the_api_trusts_the_pools_token(cognito_stack, page, screenshot):
    stack, pool = cognito_stack
    options = requests.get(f"{stack.api_url}/auth/options", timeout=10).json()
    assert options == {
        "cognito": {"endpoint": stack.moto_url, "client_id": pool.client_id},
        "dev": False,
        "websocket": {"url": stack.ws_url, "allowed": [stack.ws_url]},
    }
    assert requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": "x"}, timeout=10).status_code == 404

    page.goto(f"{stack.api_url}/console?ws={stack.ws_url}")
    expect(page.get_by_test_id("dev-sign-in")).to_be_hidden()
    page.get_by_test_id("cognito-username").fill("grace")
    page.get_by_test_id("cognito-password").fill("not-her-password")
    page.get_by_test_id("cognito-sign-in-button").click()
    expect(page.get_by_test_id("sign-in-error")).to_contain_text("Sign-in failed", timeout=WAIT_MS)

    page.get_by_test_id("cognito-password").fill(TEMPORARY)
    page.get_by_test_id("cognito-sign-in-button").click()
    expect(page.get_by_test_id("cognito-new-password-row")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("sign-in-error")).to_contain_text("choose your own password")
    page.get_by_test_id("cognito-new-password").fill(CHOSEN)
    page.get_by_test_id("cognito-sign-in-button").click()

    # Signed in as the pool says: agent id from custom:agent_id, the admin group, and the WebSocket connected.
    expect(page.get_by_test_id("whoami")).to_contain_text("grace", timeout=WAIT_MS)
    expect(page.get_by_test_id("whoami")).to_contain_text("admin")
    expect(page.get_by_test_id("ws-status")).to_have_text("connected", timeout=WAIT_MS)
    expect(page.get_by_test_id("tab-supervisor")).to_be_visible()
    screenshot(page, "cognito-signed-in")

    # The password really changed in the pool: the chosen one signs in with no challenge left.
    idp = boto3.client("cognito-idp", endpoint_url=stack.moto_url)
    answer = idp.initiate_auth(
        ClientId=pool.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "grace", "PASSWORD": CHOSEN}
    )
    assert "AuthenticationResult" in answer and "ChallengeName" not in answer
    # And a token from another pool's keys is refused by the API.
    forged = requests.get(f"{stack.api_url}/me", headers={"Authorization": "Bearer e30.e30.sig"}, timeout=10)
    assert forged.status_code == 401
