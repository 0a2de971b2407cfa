#!/usr/bin/env node
// The CDK app: one weir stack, for AWS or LocalStack (-c weir:target=localstack), checked by
// cdk-nag's AwsSolutions rules at every synth (a finding is an error unless suppressed with
// its reason in lib/weir-stack.ts: synth stops on one that is not).
import * as path from 'path';
import { App, DefaultStackSynthesizer, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { fromContext } from '../lib/config';
import { WeirStack } from '../lib/weir-stack';

const app = new App();
const config = fromContext((k) => app.node.tryGetContext(k), path.join(__dirname, '..', '..'));
new WeirStack(app, app.node.tryGetContext('weir:stackName') ?? 'Weir', {
  config,
  description: 'weir: attacks found in packet captures (S3, SQS, Lambda; infra/ in the weir repository)',
  // LocalStack: no bootstrap stack; localstack/deploy.py uploads the assets to this bucket itself.
  synthesizer:
    config.target === 'localstack'
      ? new DefaultStackSynthesizer({ fileAssetsBucketName: `${config.prefix}-cdk-assets`, generateBootstrapVersionRule: false })
      : undefined,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
