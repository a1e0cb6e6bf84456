"""Lints every function's IAM policy (and each managed policy) in template.yaml with parliament, one policy at a time
on stdin (parliament's --file needs a terminal). CloudFormation's functions are resolved to
example values of the right shape (ARNs in account 123456789012), since parliament checks
actions, resources and conditions against each other, not the values themselves.

Exit status: 0 when parliament reports nothing for any policy, 1 otherwise.
"""

import json
import os
import re
import subprocess
import sys

from cfnlint.decode import decode

ACCOUNT, REGION, STACK = "123456789012", "us-east-1", "seatcap"
EXAMPLE_MANAGED_POLICIES = [f"arn:aws:iam::{ACCOUNT}:policy/bedrock-invoke"]
EXAMPLE_PARAMETERS = {
    "ManagedPolicyArns": EXAMPLE_MANAGED_POLICIES,
    "SlackWebhookSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:seatcap/slack-AbCdEf",
    "BedrockInvocationLogBucketName": "example-bedrock-logs",
}
# A resource made only under a condition sees parameters that meet it.
EXAMPLE_PARAMETERS_WHEN = {
    "SlackInSsm": {"SlackWebhookSecretArn": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/seatcap/slack"},
}

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::StackName": STACK,
}


def arn_of(resource_type, name):
    return {
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
        "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
        "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
    }[resource_type]


def resolve(value, resources, parameters):
    if isinstance(value, list):
        return [resolve(v, resources, parameters) for v in value]
    if not isinstance(value, dict):
        return value
    if list(value) == ["Ref"]:
        name = value["Ref"]
        if name in PSEUDO:
            return PSEUDO[name]
        if name in parameters:
            return parameters[name]
        return arn_of(resources[name]["Type"], name)
    if list(value) == ["Fn::GetAtt"]:
        name, _attribute = value["Fn::GetAtt"]
        return arn_of(resources[name]["Type"], name)
    if list(value) == ["Fn::Sub"]:
        def substitute(match):
            name = match.group(1)
            if name in PSEUDO:
                return PSEUDO[name]
            if name in parameters:
                return parameters[name]
            resource = name.split(".")[0]
            return arn_of(resources[resource]["Type"], resource)

        return re.sub(r"\$\{([^}]+)\}", substitute, value["Fn::Sub"])
    return {k: resolve(v, resources, parameters) for k, v in value.items()}


def main():
    template, matches = decode("template.yaml")
    if matches:
        sys.exit(f"template.yaml does not parse: {matches}")
    resources = template["Resources"]
    failed = False
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            # Inline documents; the others are references to the managed policies below.
            policies = [
                p for p in resource["Properties"].get("Policies", []) if "Statement" in p
            ]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            policies = [resource["Properties"]["PolicyDocument"]]
        else:
            continue
        parameters = {
            **EXAMPLE_PARAMETERS,
            **EXAMPLE_PARAMETERS_WHEN.get(resource.get("Condition"), {}),
        }
        for policy in policies:
            document = json.dumps(resolve(policy, resources, parameters))
            result = subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), "parliament")],
                input=document,
                capture_output=True,
                text=True,
            )
            findings = result.stdout.strip()
            if findings or result.returncode != 0:
                failed = True
                print(f"{name}:\n{findings}{result.stderr}")
            else:
                print(f"{name}: parliament found nothing")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
