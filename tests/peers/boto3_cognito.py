"""boto3 against iotchat-server's Cognito endpoints: the same flow as the app, and the typed
errors botocore maps. Prints one JSON object; exits non-zero if any step fails."""

import json
import sys

import boto3
from botocore import UNSIGNED
from botocore.config import Config


def main() -> None:
    profile = json.loads(sys.argv[1])
    username, password = sys.argv[2], sys.argv[3]
    # The Cognito operations the app uses are unsigned, as on AWS.
    config = Config(signature_version=UNSIGNED, retries={"max_attempts": 1})
    idp = boto3.client(
        "cognito-idp",
        region_name=profile["region"],
        endpoint_url=profile["cognitoIdpEndpoint"],
        config=config,
    )
    identity = boto3.client(
        "cognito-identity",
        region_name=profile["region"],
        endpoint_url=profile["cognitoIdentityEndpoint"],
        config=config,
    )
    client_id = profile["userPoolClientId"]
    attrs = [{"Name": "email", "Value": f"{username}@example.com"}]

    out = {}
    signed_up = idp.sign_up(ClientId=client_id, Username=username, Password=password, UserAttributes=attrs)
    out["userConfirmed"] = signed_up["UserConfirmed"]

    errors = {}
    try:
        idp.sign_up(ClientId=client_id, Username=username, Password=password, UserAttributes=attrs)
    except idp.exceptions.UsernameExistsException:
        errors["taken"] = "UsernameExistsException"
    try:
        idp.sign_up(ClientId=client_id, Username=username + "2", Password="weak", UserAttributes=attrs)
    except idp.exceptions.InvalidPasswordException as e:
        errors["weak"] = e.response["Error"]["Message"]
    try:
        idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password + "x"},
        )
    except idp.exceptions.NotAuthorizedException as e:
        errors["wrongPassword"] = e.response["Error"]["Message"]
    out["errors"] = errors

    auth = idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    out["username"] = idp.get_user(AccessToken=auth["AccessToken"])["Username"]
    refreshed = idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": auth["RefreshToken"]},
    )["AuthenticationResult"]
    out["refreshHasNoRefreshToken"] = "RefreshToken" not in refreshed

    provider = f"cognito-idp.{profile['region']}.amazonaws.com/{profile['userPoolId']}"
    logins = {provider: refreshed["IdToken"]}
    identity_id = identity.get_id(IdentityPoolId=profile["identityPoolId"], Logins=logins)["IdentityId"]
    creds = identity.get_credentials_for_identity(IdentityId=identity_id, Logins=logins)["Credentials"]
    out["identityId"] = identity_id
    out["accessKeyId"] = creds["AccessKeyId"]
    out["expirationIsDatetime"] = hasattr(creds["Expiration"], "timestamp")

    idp.global_sign_out(AccessToken=auth["AccessToken"])
    try:
        idp.get_user(AccessToken=auth["AccessToken"])
    except idp.exceptions.NotAuthorizedException as e:
        errors["afterSignOut"] = e.response["Error"]["Message"]

    print(json.dumps(out))


if __name__ == "__main__":
    main()
