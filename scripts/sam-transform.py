#!/usr/bin/env python3
"""Prints the template as CloudFormation deploys it: SAM's Serverless transform applied (the
same translator cfn-lint uses), as JSON. Offline: no AWS call, the region is a placeholder and
the code location a dummy S3 URI (SAM build fills it in).

Usage: sam-transform.py TEMPLATE   (uses the venv's aws-sam-translator)
"""
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no managed policy; none is looked up."""

    def load(self):
        return {}


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read().replace("CodeUri: .", "CodeUri: s3://sam-build/bootstrap.zip")
    print(json.dumps(transform(yaml_parse(text), {}, NoManagedPolicies()), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
