"""Deploy weir's CDK stack (infra/) to LocalStack through its CloudFormation API.

The stack is the one AWS gets, synthesized with `-c weir:target=localstack` (see
docs/DEPLOY.md, "LocalStack"): the same bucket, notifications, queues, dead-letter queues,
roles, functions, event source mappings (created disabled), alarms and deadline tick; no GPU
service (ECS is not in LocalStack's community edition) and no web function (its layer is
another account's). `cdk deploy` needs a bootstrapped account, so this does what it does by
hand: the assets go to the bucket the synthesizer names, the template is created or updated
as a stack, and the stack's events are printed when it fails.

LocalStack cannot run Lambda code without Docker, so the functions' code there is a
placeholder that says so; weir-lambda-local runs the real binaries. What it runs follows the
deployed stack: this writes OUT/functions.json (each function's queue, batch size, timeout
and environment, read back from LocalStack's Lambda API) and ctl.sh start-functions starts
weir-lambda-local from it.

Usage: python deploy.py OUT --bucket NAME --max-receives N [--visibility SECONDS] [--prefix weir]
(AWS_ENDPOINT_URL: LocalStack). Prints the stack's outputs.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
STACK = "Weir"

PLACEHOLDER = """#!/bin/sh
echo "weir on LocalStack: LocalStack runs no Lambda code here (no Docker). This function's
real binary runs under weir-lambda-local: bash localstack/ctl.sh start-functions" >&2
exit 1
"""


def placeholders(out):
    """One placeholder zip per function binary (infra/settings.json), for weir:artifacts."""
    settings = json.load(open(os.path.join(REPO, "infra", "settings.json")))
    d = os.path.join(out, "artifacts")
    os.makedirs(d, exist_ok=True)
    for f in settings["functions"].values():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16
            z.writestr(info, PLACEHOLDER)
        with open(os.path.join(d, f["binary"] + ".zip"), "wb") as fh:
            fh.write(buf.getvalue())
    return d


def synth(out, args, artifacts):
    cdk_out = os.path.join(out, "cdk.out")
    shutil.rmtree(cdk_out, ignore_errors=True)
    cmd = ["bash", os.path.join(REPO, "scripts", "infra.sh"), "synth", "-o", cdk_out,
           "-c", "weir:target=localstack", "-c", f"weir:prefix={args.prefix}",
           "-c", f"weir:bucketName={args.bucket}", "-c", f"weir:artifacts={artifacts}",
           "-c", f"weir:maxReceives={args.max_receives}"]
    if args.visibility is not None:
        cmd += ["-c", f"weir:visibility={args.visibility}"]
    t = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"synthesized the stack for LocalStack in {time.time() - t:.1f} s ({cdk_out})", file=sys.stderr)
    return cdk_out


def publish_assets(s3, cdk_out):
    """What cdk-assets does: every file asset to its destination (directories zipped).
    Returns the template's URL."""
    manifest = json.load(open(os.path.join(cdk_out, f"{STACK}.assets.json")))
    template_url = None
    made = set()
    for asset in manifest["files"].values():
        src = os.path.join(cdk_out, asset["source"]["path"])
        if asset["source"].get("packaging") == "zip":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for root, _, files in os.walk(src):
                    for name in files:
                        p = os.path.join(root, name)
                        z.write(p, os.path.relpath(p, src))
            body = buf.getvalue()
        else:
            body = open(src, "rb").read()
        for dest in asset["destinations"].values():
            bucket, key = dest["bucketName"], dest["objectKey"]
            if bucket not in made:
                try:
                    s3.create_bucket(Bucket=bucket)
                except ClientError as e:
                    if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
                made.add(bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            if asset["source"]["path"] == f"{STACK}.template.json":
                template_url = f"{os.environ['AWS_ENDPOINT_URL']}/{bucket}/{key}"
    if template_url is None:
        sys.exit(f"deploy.py: the template is not among the assets of {cdk_out}")
    return template_url


def failure_events(cfn):
    events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]
    bad = [e for e in events if e["ResourceStatus"].endswith("FAILED")]
    return "\n".join(
        f"  {e['LogicalResourceId']} ({e['ResourceType']}): {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in reversed(bad)
    ) or "  (no resource says why)"


def deploy(cfn, template_url):
    """Create the stack, or update it; wait until it is done. Exits with the failed resources'
    reasons when it fails."""
    try:
        status = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
    except ClientError:
        status = None
    caps = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    t = time.time()
    if status in (None, "ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
        if status == "ROLLBACK_COMPLETE":
            cfn.delete_stack(StackName=STACK)
            cfn.get_waiter("stack_delete_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        cfn.create_stack(StackName=STACK, TemplateURL=template_url, Capabilities=caps)
        verb, waiter = "created", "stack_create_complete"
    else:
        try:
            cfn.update_stack(StackName=STACK, TemplateURL=template_url, Capabilities=caps)
        except ClientError as e:
            if "No updates are to be performed" in str(e):
                print("the stack on LocalStack is up to date", file=sys.stderr)
                return
            raise
        verb, waiter = "updated", "stack_update_complete"
    try:
        cfn.get_waiter(waiter).wait(StackName=STACK, WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    except Exception as e:
        sys.exit(f"deploy.py: the stack {STACK} was not {verb} on LocalStack ({e}); what failed:\n{failure_events(cfn)}")
    print(f"stack {STACK} {verb} on LocalStack in {time.time() - t:.1f} s", file=sys.stderr)


def functions_json(cfn, lam, out):
    """The functions as deployed: what weir-lambda-local runs, and how."""
    resources = cfn.describe_stack_resources(StackName=STACK)["StackResources"]
    names = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function"]
    fns = []
    for name in sorted(names):
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg.get("State") != "Active":
            sys.exit(f"deploy.py: function {name} is {cfg.get('State')} on LocalStack: {cfg.get('StateReason')}")
        mappings = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
        for m in mappings:
            if m.get("State") not in ("Disabled", "Disabling"):
                sys.exit(f"deploy.py: the event source mapping of {name} is {m.get('State')}: on LocalStack it must be disabled")
        fns.append({
            "name": name,
            "queues": [m["EventSourceArn"].rsplit(":", 1)[1] for m in mappings],
            "batch": mappings[0]["BatchSize"] if mappings else None,
            "timeout": cfg["Timeout"],
            "memory": cfg["MemorySize"],
            "environment": cfg.get("Environment", {}).get("Variables", {}),
        })
    with open(os.path.join(out, "functions.json"), "w") as fh:
        json.dump(fns, fh, indent=1)
    return fns


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="weir")
    p.add_argument("--max-receives", type=int, required=True)
    p.add_argument("--visibility", type=int)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cdk_out = synth(args.out, args, placeholders(args.out))
    session = boto3.session.Session()
    s3 = session.client("s3")
    cfn = session.client("cloudformation")
    lam = session.client("lambda")
    deploy(cfn, publish_assets(s3, cdk_out))
    fns = functions_json(cfn, lam, args.out)
    outputs = cfn.describe_stacks(StackName=STACK)["Stacks"][0].get("Outputs", [])
    with open(os.path.join(args.out, "outputs.json"), "w") as fh:
        json.dump({o["OutputKey"]: o["OutputValue"] for o in outputs}, fh, indent=1)
    print(f"functions: {', '.join(f['name'] for f in fns)} (configuration in {args.out}/functions.json)", file=sys.stderr)


if __name__ == "__main__":
    main()
