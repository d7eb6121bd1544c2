#!/usr/bin/env python3
"""Least privilege in the SAM template (issue 7): every function's policies name their actions
and resources, with no wildcard action, no `*` resource, and no wildcard outside an S3 object key
in a named bucket. SAM policy templates are allowed only from a short list, scoped to a
parameter or a resource of the template. Exit status 1 with every problem listed.

Usage: check-iam.py TEMPLATE   (uses cfn-lint's YAML loader, from the venv)
"""
import sys

from cfnlint.decode import cfn_yaml

# SAM policy templates allowed, and the parameter that scopes each.
TEMPLATES = {
    "AWSSecretsManagerGetSecretValuePolicy": "SecretArn",
    "SQSSendMessagePolicy": "QueueName",
    "S3ReadPolicy": "BucketName",
    "DynamoDBCrudPolicy": "TableName",
}


def scoped(value):
    """A Ref/GetAtt/Sub/Join/If of template things, not a literal wildcard."""
    if isinstance(value, str):
        return value != "*" and value.strip() != ""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key in ("Ref", "Fn::GetAtt", "Fn::ImportValue"):
            return inner != "*"
        if key == "Fn::Sub":
            text = inner if isinstance(inner, str) else inner[0]
            return resource_text_ok(text)
        if key == "Fn::Join":
            return all(scoped(v) or v in ("", "/", ":") for v in inner[1] if not isinstance(v, dict)) and \
                all(scoped(v) for v in inner[1] if isinstance(v, dict))
        if key == "Fn::If":
            return all(scoped(v) for v in inner[1:] if v != {"Ref": "AWS::NoValue"})
    if isinstance(value, list):
        return all(scoped(v) for v in value)
    return False


def resource_text_ok(text):
    """`*` only inside an S3 object key of a named bucket: arn:aws:s3:::${Bucket}/prefix*."""
    if "*" not in text:
        return True
    if not text.startswith("arn:${AWS::Partition}:s3:::") and not text.startswith("arn:aws:s3:::"):
        return False
    bucket_and_key = text.split(":::", 1)[1]
    bucket, _, key = bucket_and_key.partition("/")
    return bucket not in ("", "*") and "*" not in bucket and key != ""


# Lambda's network interfaces in a VPC: EC2 gives these actions no resource-level scope Lambda
# can use, so they are allowed on "*", and only in a policy that exists when the functions are
# attached (Condition: AttachedToVpc).
VPC_ACTIONS = {
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
}


def statements(document):
    """A document's statements, each branch of an `!If` statement on its own."""
    for statement in document.get("Statement", []):
        if isinstance(statement, dict) and "Fn::If" in statement:
            for branch in statement["Fn::If"][1:]:
                if branch != {"Ref": "AWS::NoValue"}:
                    yield branch
        else:
            yield statement


def vpc_only(statement, condition):
    actions = statement.get("Action", [])
    actions = actions if isinstance(actions, list) else [actions]
    return condition == "AttachedToVpc" and statement.get("Resource") == "*" and \
        bool(actions) and all(a in VPC_ACTIONS for a in actions)


def check_statement(where, statement, problems):
    actions = statement.get("Action", [])
    actions = actions if isinstance(actions, list) else [actions]
    if not actions:
        problems.append(f"{where}: a statement without actions")
    for action in actions:
        if not isinstance(action, str) or "*" in action:
            problems.append(f"{where}: wildcard or computed action {action!r}")
    if "NotAction" in statement or "NotResource" in statement:
        problems.append(f"{where}: NotAction/NotResource grant everything else")
    resources = statement.get("Resource")
    if resources is None:
        problems.append(f"{where}: no Resource")
    elif not scoped(resources):
        problems.append(f"{where}: resource {resources!r} is not scoped to a named thing")


def check(template):
    problems = []
    for name, resource in template.get("Resources", {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties", {}) or {}
        if kind == "AWS::Serverless::Function":
            for i, policy in enumerate(props.get("Policies", []) or []):
                where = f"{name} policy {i + 1}"
                if isinstance(policy, dict) and "Fn::If" in policy:
                    branches = [b for b in policy["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
                else:
                    branches = [policy]
                for branch in branches:
                    if isinstance(branch, str):
                        problems.append(f"{where}: managed policy {branch!r} (name what is used instead)")
                    elif "Statement" in branch:
                        for statement in branch["Statement"]:
                            check_statement(where, statement, problems)
                    else:
                        for template_name, params in branch.items():
                            scope = TEMPLATES.get(template_name)
                            if scope is None:
                                problems.append(f"{where}: policy template {template_name} is not on the allowed list")
                            elif not scoped((params or {}).get(scope)):
                                problems.append(f"{where}: {template_name} is not scoped by {scope}")
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
            documents = [props.get("PolicyDocument")] + [p.get("PolicyDocument") for p in props.get("Policies", [])]
            for document in filter(None, documents):
                for statement in statements(document):
                    if vpc_only(statement, resource.get("Condition")):
                        continue
                    check_statement(name, statement, problems)
            for arn in props.get("ManagedPolicyArns", []) or []:
                problems.append(f"{name}: managed policy {arn!r}")
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    template = cfn_yaml.load(sys.argv[1])
    functions = [n for n, r in template["Resources"].items() if r.get("Type") == "AWS::Serverless::Function"]
    problems = check(template)
    for p in problems:
        print(f"{sys.argv[1]}: {p}")
    if problems:
        return 1
    print(f"{sys.argv[1]}: least privilege holds for {', '.join(functions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
