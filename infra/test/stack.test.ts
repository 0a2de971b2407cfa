// Assertions on the synthesized template (aws-cdk-lib/assertions; no AWS account, no CLI) and
// cdk-nag's AwsSolutions pack over the construct tree. Run: npm test (scripts/infra.sh test).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FUNCTIONS, MAX_RECEIVES, fromContext } from '../lib/config';
import { WeirStack } from '../lib/weir-stack';

// Stand-in zips: these tests look at the template, not at the code (scripts/lambda-zips.sh
// and functions/tests/lambda_zips.rs check the real ones).
const artifacts = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-infra-test-'));
for (const name of [...Object.values(FUNCTIONS).map((f) => f.binary), 'weir-web']) {
  fs.writeFileSync(path.join(artifacts, `${name}.zip`), `stand-in for ${name}`);
}

interface Synth {
  app: App;
  stack: WeirStack;
  template: Template;
  json: any;
}

// The feature flags of cdk.json, as `cdk synth` applies them.
const flags = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cdk.json'), 'utf8')).context;

function synth(context: Record<string, string> = {}): Synth {
  const app = new App({ context: { ...flags, 'weir:artifacts': artifacts, ...context } });
  const config = fromContext((k) => app.node.tryGetContext(k), path.join(__dirname, '..', '..'));
  const stack = new WeirStack(app, 'Weir', { config, env: { account: '123456789012', region: 'eu-west-1' } });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() };
}

const lambdaStack = synth({ 'weir:edgeNodes': 'edge-1,edge-2' });
const gpuStack = synth({ 'weir:gpu': 'true' });
const localStack = synth({ 'weir:target': 'localstack' });
const variants: [string, Synth][] = [
  ['lambda', lambdaStack],
  ['gpu', gpuStack],
  ['localstack', localStack],
];

function resources(s: Synth, type: string): [string, any][] {
  return Object.entries(s.json.Resources as Record<string, any>).filter(([, r]) => r.Type === type);
}

/** A CloudFormation value as text: Ref X -> <X>, GetAtt X.Arn -> <X.Arn>, joins joined. */
function flat(v: any): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(flat).join(',');
  if (v && typeof v === 'object') {
    if ('Ref' in v) return `<${v.Ref}>`;
    if ('Fn::GetAtt' in v) return `<${v['Fn::GetAtt'].join('.')}>`;
    if ('Fn::Join' in v) return v['Fn::Join'][1].map(flat).join(v['Fn::Join'][0]);
    if ('Fn::Sub' in v) return String(v['Fn::Sub']);
  }
  return JSON.stringify(v);
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every statement of the IAM policies attached to a role (inline policies and AWS::IAM::Policy). */
function statementsOf(s: Synth, roleId: string): any[] {
  const out: any[] = [];
  const role = s.json.Resources[roleId];
  for (const p of list(role.Properties.Policies)) out.push(...list((p as any).PolicyDocument.Statement));
  for (const [, p] of resources(s, 'AWS::IAM::Policy')) {
    if (list(p.Properties.Roles).some((r: any) => r.Ref === roleId)) out.push(...list(p.Properties.PolicyDocument.Statement));
  }
  return out;
}

function roleOf(s: Synth, functionName: string): string {
  const [, fn] = resources(s, 'AWS::Lambda::Function').find(([, r]) => r.Properties.FunctionName === functionName)!;
  return fn.Properties.Role['Fn::GetAtt'][0];
}

function queueId(s: Synth, name: string): string {
  return resources(s, 'AWS::SQS::Queue').find(([, r]) => r.Properties.QueueName === name)![0];
}

/** What a role may do: object prefixes per S3 action, and the queues per SQS action. */
function reach(s: Synth, roleId: string) {
  const bucketId = resources(s, 'AWS::S3::Bucket').find(([, r]) => r.Properties.NotificationConfiguration)![0];
  const objects: Record<string, Set<string>> = {};
  const queues: Record<string, Set<string>> = {};
  const queueNames = Object.fromEntries(resources(s, 'AWS::SQS::Queue').map(([id, r]) => [`<${id}.Arn>`, r.Properties.QueueName]));
  for (const st of statementsOf(s, roleId)) {
    assert.equal(st.Effect, 'Allow');
    for (const action of list<string>(st.Action)) {
      for (const res of list(st.Resource).map(flat)) {
        if (action.startsWith('s3:')) {
          const prefix = `<${bucketId}.Arn>/`;
          if (action === 's3:ListBucket') continue; // checked below: conditioned on prefixes
          assert.ok(res.startsWith(prefix), `${roleId} ${action} on ${res}: not an object of the capture bucket`);
          (objects[action] ??= new Set()).add(res.slice(prefix.length));
        } else if (action.startsWith('sqs:')) {
          assert.ok(res in queueNames, `${roleId} ${action} on ${res}: not one of weir's queues`);
          (queues[action] ??= new Set()).add(queueNames[res]);
        } else {
          assert.ok(action.startsWith('logs:'), `${roleId}: unexpected action ${action}`);
          assert.match(res, /^<\w+Logs\w+\.Arn>$/, `${roleId} ${action}: only its own log group`);
        }
      }
    }
    if (list<string>(st.Action).includes('s3:ListBucket')) {
      assert.ok(st.Condition?.StringLike?.['s3:prefix'], `${roleId}: ListBucket without a prefix condition`);
    }
  }
  const sorted = (m: Record<string, Set<string>>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, [...v].sort()]));
  return { objects: sorted(objects), queues: sorted(queues) };
}

/** IAM's own wildcard rules ('*' any run of characters, '?' one) as a RegExp. */
function iamGlob(pattern: string): RegExp {
  return new RegExp('^' + pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/]/g, '\\$&'))).join('') + '$');
}

test('every queue weir reads has a dead-letter queue, maxReceiveCount and a visibility of six reader timeouts', () => {
  for (const [variant, s] of variants) {
    const queues = resources(s, 'AWS::SQS::Queue');
    const main = queues.filter(([, r]) => !r.Properties.QueueName.endsWith('-dlq'));
    assert.equal(main.length, Object.keys(FUNCTIONS).length, variant);
    for (const [id, r] of main) {
      const redrive = r.Properties.RedrivePolicy;
      assert.ok(redrive, `${variant}: ${r.Properties.QueueName} has no dead-letter queue`);
      assert.equal(redrive.maxReceiveCount, MAX_RECEIVES);
      const dlq = redrive.deadLetterTargetArn['Fn::GetAtt'][0];
      assert.equal(s.json.Resources[dlq].Properties.QueueName, `${r.Properties.QueueName}-dlq`, id);
      const f = Object.values(FUNCTIONS).find((f) => `weir-${f.queue}` === r.Properties.QueueName)!;
      assert.equal(r.Properties.VisibilityTimeout, 6 * f.timeout, `${r.Properties.QueueName} visibility`);
      assert.equal(r.Properties.SqsManagedSseEnabled, true);
    }
    // and every dead-letter queue belongs to one
    for (const [id, r] of queues.filter(([, r]) => r.Properties.QueueName.endsWith('-dlq'))) {
      assert.ok(main.some(([, m]) => m.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0] === id), id);
      assert.equal(r.Properties.MessageRetentionPeriod, 14 * 24 * 3600);
    }
  }
});

test('every bucket is encrypted, TLS only and blocks public access', () => {
  for (const [variant, s] of variants) {
    const buckets = resources(s, 'AWS::S3::Bucket');
    assert.equal(buckets.length, 2, variant);
    for (const [id, b] of buckets) {
      assert.ok(b.Properties.BucketEncryption?.ServerSideEncryptionConfiguration?.length, `${id} not encrypted`);
      assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      const [, policy] = resources(s, 'AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === id)!;
      const tls = list<any>(policy.Properties.PolicyDocument.Statement).find(
        (st) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      );
      assert.ok(tls, `${id}: no statement denies requests without TLS`);
      assert.equal(tls.Principal.AWS, '*');
      assert.equal(tls.Action, 's3:*');
    }
  }
});

test('raw captures expire, and the notifications are on the bucket itself (no custom resource)', () => {
  for (const [variant, s] of variants) {
    const [, b] = resources(s, 'AWS::S3::Bucket').find(([, r]) => r.Properties.NotificationConfiguration)!;
    const rules = b.Properties.LifecycleConfiguration.Rules;
    const raw = rules.find((r: any) => r.Prefix === 'uploads/');
    assert.equal(raw.ExpirationInDays, 365, variant);
    const qc = b.Properties.NotificationConfiguration.QueueConfigurations;
    const target = (prefix: string) => qc.find((c: any) => c.Filter.S3Key.Rules.some((r: any) => r.Name === 'prefix' && r.Value === prefix));
    assert.equal(target('uploads/').Queue['Fn::GetAtt'][0], queueId(s, 'weir-uploads'));
    assert.equal(target('fl/updates/').Queue['Fn::GetAtt'][0], queueId(s, 'weir-fl'));
    assert.ok(target('fl/updates/').Filter.S3Key.Rules.some((r: any) => r.Name === 'suffix' && r.Value === '.json'));
    assert.equal(resources(s, 'Custom::S3BucketNotifications').length, 0, 'addEventNotification was used');
    // S3 may send to those queues, only for this bucket
    for (const q of ['weir-uploads', 'weir-fl']) {
      const id = queueId(s, q);
      const [, pol] = resources(s, 'AWS::SQS::QueuePolicy').find(([, p]) => p.Properties.Queues.some((x: any) => x.Ref === id))!;
      const st = pol.Properties.PolicyDocument.Statement.find((st: any) => st.Principal?.Service === 's3.amazonaws.com');
      assert.ok(st.Condition.ArnLike['aws:SourceArn'], q);
    }
  }
});

test('no IAM statement grants every action on every resource', () => {
  for (const [variant, s] of variants) {
    const docs: any[] = [];
    for (const [, p] of resources(s, 'AWS::IAM::Policy')) docs.push(p.Properties.PolicyDocument);
    for (const [, p] of resources(s, 'AWS::IAM::ManagedPolicy')) docs.push(p.Properties.PolicyDocument);
    for (const [, r] of resources(s, 'AWS::IAM::Role')) for (const p of list<any>(r.Properties.Policies)) docs.push(p.PolicyDocument);
    assert.ok(docs.length >= 5, variant);
    for (const doc of docs) {
      for (const st of list<any>(doc.Statement)) {
        const actions = list<string>(st.Action);
        const res = list(st.Resource).map(flat);
        const anyAction = actions.some((a) => a === '*' || /^[a-z0-9-]+:\*$/.test(a));
        assert.ok(!(anyAction && res.includes('*')), `${variant}: ${JSON.stringify(st)}`);
        assert.ok(!actions.includes('*'), `${variant}: Action '*' in ${JSON.stringify(st)}`);
      }
    }
    // and no role carries an AWS-managed policy (they grant more than weir needs)
    for (const [id, r] of resources(s, 'AWS::IAM::Role')) {
      if (variant !== 'gpu') assert.deepEqual(list(r.Properties.ManagedPolicyArns), [], id);
    }
  }
});

test("each function's role reaches only its own prefixes and queues", () => {
  const s = lambdaStack;
  const expect: Record<string, { objects: Record<string, string[]>; queues: Record<string, string[]> }> = {
    'weir-splitter': {
      objects: { 's3:GetObject': ['captures/*', 'uploads/*'], 's3:PutObject': ['captures/*'], 's3:DeleteObject': ['captures/*'] },
      queues: { 'sqs:ReceiveMessage': ['weir-uploads'], 'sqs:SendMessage': ['weir-aggregate', 'weir-shards'] },
    },
    'weir-classifier': {
      objects: { 's3:GetObject': ['captures/*', 'registry/*'], 's3:PutObject': ['captures/*'] },
      queues: { 'sqs:ReceiveMessage': ['weir-shards'], 'sqs:SendMessage': ['weir-aggregate'] },
    },
    'weir-aggregator': {
      objects: { 's3:GetObject': ['captures/*'], 's3:PutObject': ['captures/*'], 's3:DeleteObject': ['captures/*'] },
      queues: { 'sqs:ReceiveMessage': ['weir-aggregate'] },
    },
    'weir-merge': {
      objects: { 's3:GetObject': ['fl/*', 'registry/*'], 's3:PutObject': ['fl/rounds/*', 'fl/state/*', 'registry/*'] },
      queues: { 'sqs:ReceiveMessage': ['weir-fl'] },
    },
    'weir-web': {
      objects: { 's3:GetObject': ['captures/*', 'registry/*'], 's3:PutObject': ['uploads/*'] },
      queues: {},
    },
  };
  for (const [fn, want] of Object.entries(expect)) {
    const got = reach(s, roleOf(s, fn));
    assert.deepEqual(got.objects, want.objects, `${fn}: S3`);
    const queues = Object.fromEntries(Object.entries(got.queues).filter(([a]) => a === 'sqs:ReceiveMessage' || a === 'sqs:SendMessage'));
    assert.deepEqual(queues, want.queues, `${fn}: SQS`);
    // receiving and deleting go together, on the same queue
    assert.deepEqual(got.queues['sqs:DeleteMessage'] ?? [], want.queues['sqs:ReceiveMessage'] ?? [], `${fn}: DeleteMessage`);
  }
  // Only the merge publishes models, only the web app (and the user) uploads captures.
  for (const fn of Object.keys(expect)) {
    const puts = reach(s, roleOf(s, fn)).objects['s3:PutObject'] ?? [];
    if (fn !== 'weir-merge') assert.ok(!puts.some((p) => p.startsWith('registry/') || p.startsWith('fl/')), fn);
    if (fn !== 'weir-web') assert.ok(!puts.includes('uploads/*'), fn);
  }
});

test('each edge node writes only its own prefix', () => {
  const s = lambdaStack;
  const roles = resources(s, 'AWS::IAM::Role').filter(([, r]) => String(r.Properties.Description).startsWith('weir edge node'));
  assert.equal(roles.length, 2);
  for (const node of ['edge-1', 'edge-2']) {
    const [id] = roles.find(([, r]) => r.Properties.Description.includes(` ${node}:`))!;
    const got = reach(s, id);
    const puts = (got.objects['s3:PutObject'] ?? []).map(iamGlob);
    assert.deepEqual(Object.keys(got.queues), [], node);
    const other = node === 'edge-1' ? 'edge-2' : 'edge-1';
    const may = (key: string) => puts.some((re) => re.test(key));
    assert.ok(may(`fl/updates/round-000007/${node}/3f2a.json`), `${node} cannot push its update`);
    assert.ok(may(`fl/updates/round-000007/${node}/3f2a.bin`), `${node} cannot push its payload`);
    assert.ok(may(`edge/${node}/alerts/cap-1.json`), `${node} cannot push its alerts`);
    for (const key of [
      `fl/updates/round-000007/${other}/3f2a.json`,
      `fl/updates/round-000007/${other}/${node}/3f2a.json`,
      `fl/updates/round-0000071/${other}/${node}/x.json`,
      `fl/nodes/${node}.pub`,
      `edge/${other}/alerts/cap-1.json`,
      `edge/${other}${node}/x`,
      'registry/latest.json',
      'uploads/x.pcap',
      'captures/x/status.json',
    ]) {
      assert.ok(!may(key), `${node} may write ${key}`);
    }
    assert.deepEqual(got.objects['s3:GetObject'], [`fl/rounds/round-??????/verdicts/${node}/*`, 'registry/*'].sort());
  }
});

test('every reader of the registry trusts the registry key when one is given', () => {
  const key = 'ab'.repeat(32);
  for (const s of [synth({ 'weir:registryPublicKey': key }), synth({ 'weir:registryPublicKey': key, 'weir:gpu': 'true' })]) {
    const envs = [
      ...resources(s, 'AWS::Lambda::Function').map(([, f]) => f.Properties.Environment?.Variables ?? {}),
      ...resources(s, 'AWS::ECS::TaskDefinition').flatMap(([, t]) =>
        list<any>(t.Properties.ContainerDefinitions).map((c) =>
          Object.fromEntries(list<any>(c.Environment).map((e) => [e.Name, e.Value])),
        ),
      ),
    ].filter((v: any) => v.WEIR_BUCKET !== undefined);
    assert.ok(envs.length >= 4, `${envs.length} weir functions`);
    for (const v of envs) assert.equal(v.WEIR_REGISTRY_PUBKEY, key, JSON.stringify(v));
  }
  assert.throws(() => synth({ 'weir:registryPublicKey': 'abc' }), /64 hex digits/);
});

test('the GPU service scales on the shard backlog, down to zero', () => {
  const s = gpuStack;
  const [, target] = resources(s, 'AWS::ApplicationAutoScaling::ScalableTarget')[0];
  assert.equal(target.Properties.MinCapacity, 0);
  assert.equal(target.Properties.ScalableDimension, 'ecs:service:DesiredCount');
  const [, svc] = resources(s, 'AWS::ECS::Service')[0];
  assert.equal(svc.Properties.DesiredCount, 0);
  const [, asg] = resources(s, 'AWS::AutoScaling::AutoScalingGroup')[0];
  assert.equal(asg.Properties.MinSize, '0');
  const policies = resources(s, 'AWS::ApplicationAutoScaling::ScalingPolicy');
  assert.ok(policies.length >= 2, 'a step up and a step down');
  // the alarms that drive them read the shard queue's depth
  const shards = queueId(s, 'weir-shards');
  const driving = resources(s, 'AWS::CloudWatch::Alarm').filter(([, a]) =>
    list<any>(a.Properties.AlarmActions).some((x) => policies.some(([pid]) => x.Ref === pid)),
  );
  assert.ok(driving.length >= 2);
  for (const [id, a] of driving) {
    const metrics = list<any>(a.Properties.Metrics).filter((m) => m.MetricStat);
    const names = metrics.map((m) => m.MetricStat.Metric.MetricName).sort();
    assert.deepEqual(names, ['ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesVisible'], id);
    for (const m of metrics) {
      assert.equal(m.MetricStat.Metric.Dimensions[0].Value['Fn::GetAtt'][0], shards, id);
    }
  }
  // the scale-in step goes to zero tasks when nothing is queued or in flight
  const steps = policies.flatMap(([, p]) => list<any>(p.Properties.StepScalingPolicyConfiguration?.StepAdjustments).map((st) => ({ ...st, type: p.Properties.StepScalingPolicyConfiguration.AdjustmentType })));
  assert.ok(steps.some((st) => st.type === 'ExactCapacity' && st.ScalingAdjustment === 0), JSON.stringify(steps));
  // no classifier Lambda takes from the shard queue beside it
  assert.ok(!resources(s, 'AWS::Lambda::Function').some(([, f]) => f.Properties.FunctionName === 'weir-classifier'));
  const [, td] = resources(s, 'AWS::ECS::TaskDefinition')[0];
  assert.equal(td.Properties.ContainerDefinitions[0].ResourceRequirements[0].Type, 'GPU');
});

test('alarms watch every dead-letter queue, every queue\'s oldest message and every function\'s errors', () => {
  for (const [variant, s] of variants) {
    const alarms = resources(s, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties).filter((a) => a.MetricName);
    const on = (metric: string, dim: string, value: string) =>
      alarms.filter((a) => a.MetricName === metric && a.Dimensions?.some((d: any) => d.Name === dim && flat(d.Value) === value));
    for (const [id, q] of resources(s, 'AWS::SQS::Queue')) {
      const name = `<${id}.QueueName>`;
      const metric = q.Properties.QueueName.endsWith('-dlq') ? 'ApproximateNumberOfMessagesVisible' : 'ApproximateAgeOfOldestMessage';
      const found = on(metric, 'QueueName', name);
      assert.equal(found.length, 1, `${variant}: ${q.Properties.QueueName} has no ${metric} alarm`);
      assert.ok(found[0].AlarmActions?.length, `${variant}: alarm without action`);
    }
    for (const [id, f] of resources(s, 'AWS::Lambda::Function')) {
      assert.equal(on('Errors', 'FunctionName', `<${id}>`).length, 1, `${variant}: ${f.Properties.FunctionName} has no error alarm`);
    }
  }
});

test('logs are kept for a set time', () => {
  for (const [variant, s] of variants) {
    for (const [id, g] of resources(s, 'AWS::Logs::LogGroup')) {
      assert.equal(g.Properties.RetentionInDays, 30, `${variant}: ${id}`);
    }
    for (const [id, f] of resources(s, 'AWS::Lambda::Function')) {
      assert.ok(f.Properties.LoggingConfig?.LogGroup, `${variant}: ${id} logs to a group without retention`);
      assert.equal(f.Properties.Runtime, 'provided.al2023');
    }
  }
});

test('the federated rounds have a deadline tick into the merge queue', () => {
  const [, rule] = resources(lambdaStack, 'AWS::Events::Rule')[0];
  assert.equal(rule.Properties.ScheduleExpression, 'rate(15 minutes)');
  assert.equal(rule.Properties.Targets[0].Arn['Fn::GetAtt'][0], queueId(lambdaStack, 'weir-fl'));
});

test('on LocalStack: the same resources, event sources disabled, no GPU service and no web function', () => {
  const s = localStack;
  const mappings = resources(s, 'AWS::Lambda::EventSourceMapping');
  assert.equal(mappings.length, 4);
  for (const [id, m] of mappings) assert.equal(m.Properties.Enabled, false, id);
  for (const [id, m] of resources(lambdaStack, 'AWS::Lambda::EventSourceMapping')) {
    assert.equal(m.Properties.Enabled, true, id);
    assert.deepEqual(m.Properties.FunctionResponseTypes, ['ReportBatchItemFailures'], id);
  }
  assert.equal(resources(s, 'AWS::ECS::Service').length, 0);
  assert.ok(!resources(s, 'AWS::Lambda::Function').some(([, f]) => f.Properties.FunctionName === 'weir-web'));
  const [, b] = resources(s, 'AWS::S3::Bucket').find(([, r]) => r.Properties.NotificationConfiguration)!;
  assert.equal(b.Properties.BucketName, 'weir');
  // the same queues, functions and alarms as on AWS (less the web app's)
  const names = (x: Synth, t: string, k: string) => resources(x, t).map(([, r]) => r.Properties[k]).sort();
  assert.deepEqual(names(s, 'AWS::SQS::Queue', 'QueueName'), names(lambdaStack, 'AWS::SQS::Queue', 'QueueName'));
  assert.deepEqual(
    names(s, 'AWS::Lambda::Function', 'FunctionName'),
    names(lambdaStack, 'AWS::Lambda::Function', 'FunctionName').filter((n) => n !== 'weir-web'),
  );
});

test('cdk-nag AwsSolutions: every finding fixed or acknowledged with a reason', () => {
  for (const [variant, s] of variants) {
    const report = new AwsSolutionsChecks(s.app).validateScope(s.stack);
    const findings = report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath ?? r.resourceLogicalId}`));
    assert.deepEqual(findings, [], `${variant}: ${findings.length} findings`);
    // each acknowledgement says why
    const acks: { id: string; reason: string }[] = [];
    for (const c of s.stack.node.findAll()) {
      for (const m of c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)) {
        for (const [id, reason] of Object.entries(m.data as Record<string, string>)) acks.push({ id, reason });
      }
    }
    assert.ok(acks.length > 0, variant);
    for (const a of acks) assert.ok(a.reason && a.reason.length >= 30, `${variant}: ${JSON.stringify(a)} has no reason`);
  }
});

test('settings with a mistake are refused, naming the key and the value', () => {
  assert.throws(() => synth({ 'weir:target': 'azure' }), /weir:target=azure/);
  assert.throws(() => synth({ 'weir:edgeNodes': 'edge-1,../x' }), /"\.\.\/x" is not a node name/);
  assert.throws(() => synth({ 'weir:gpu': 'maybe' }), /weir:gpu=maybe/);
  assert.throws(() => synth({ 'weir:artifacts': '/nonexistent' }), /lambda-zips/);
});
