// weir on AWS, in one stack: the capture bucket and its S3 -> SQS notifications, the queues and
// their dead-letter queues, the splitter, classifier, aggregator and merge functions, the GPU
// classifier service (optional), the web app (optional), the edge nodes' roles, the scheduled
// tick of federated rounds, alarms and outputs. The same stack deploys to LocalStack
// (cfg.target = 'localstack'; what differs is said where it differs and in docs/DEPLOY.md).
//
// IAM is written out per function, by prefix of the bucket (see ARCHITECTURE.md, "Object
// layout"): uploads/ (captures as uploaded), captures/ID/ (status, shards, results, search
// layout, summary), registry/ (model versions and the signed pointer), fl/ (federated updates,
// rounds, the evaluation set, the merge's state).
import * as path from 'path';
import {
  Aws,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  StackProps,
  Validations,
  aws_applicationautoscaling as appscaling,
  aws_autoscaling as autoscaling,
  aws_cloudwatch as cw,
  aws_cloudwatch_actions as cw_actions,
  aws_ec2 as ec2,
  aws_ecs as ecs,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_lambda_event_sources as sources,
  aws_logs as logs,
  aws_s3 as s3,
  aws_secretsmanager as secrets,
  aws_sns as sns,
  aws_sns_subscriptions as subs,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { FUNCTIONS, FunctionSettings, WeirConfig, artifact } from './config';

export interface WeirStackProps extends StackProps {
  config: WeirConfig;
}

/** A queue weir reads, its dead-letter queue, and who reads it. */
interface QueuePair {
  queue: sqs.Queue;
  dlq: sqs.Queue;
  readerTimeout: number;
}

export class WeirStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly queues: Record<string, QueuePair> = {};
  readonly functions: Record<string, lambda.Function> = {};
  readonly alarms: sns.Topic;

  constructor(scope: Construct, id: string, props: WeirStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    const local = cfg.target === 'localstack';
    const retention = logRetention(cfg.logRetentionDays);
    const trust = registryTrust(cfg);

    // ---- storage --------------------------------------------------------------------------
    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    ack(accessLogs, [
      { id: 'AwsSolutions-S1', reason: 'This is the server access log bucket of the capture bucket; logging it into itself would loop.' },
    ]);

    // Named before it exists: the queues' policies name the bucket that may send to them, and
    // the bucket's notifications need those policies first (a reference to the bucket's own
    // ARN there would be a circular dependency).
    const bucketName = cfg.bucketName ?? `${cfg.prefix}-captures-${Aws.ACCOUNT_ID}-${Aws.REGION}`;
    const bucketArn = `arn:${Aws.PARTITION}:s3:::${bucketName}`;
    this.bucket = new s3.Bucket(this, 'Captures', {
      bucketName,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'captures-bucket/',
      lifecycleRules: [
        {
          id: 'raw-captures',
          prefix: 'uploads/',
          transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }],
          expiration: Duration.days(cfg.rawCaptureDays),
        },
        { id: 'abandoned-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      // Captures and results are the users' data: `cdk destroy` leaves the bucket (and says so).
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const bucket = this.bucket;

    // ---- queues ---------------------------------------------------------------------------
    for (const f of Object.values(FUNCTIONS)) {
      const name = `${cfg.prefix}-${f.queue}`;
      const dlq = new sqs.Queue(this, `${cap(f.queue)}Dlq`, {
        queueName: `${name}-dlq`,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      ack(dlq, [
        { id: 'AwsSolutions-SQS3', reason: `This is the dead-letter queue of ${name}; an alarm watches its depth.` },
      ]);
      const queue = new sqs.Queue(this, cap(f.queue), {
        queueName: name,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        // a message is never delivered again while an invocation may still work on it
        visibilityTimeout: Duration.seconds(cfg.visibility ?? 6 * f.timeout),
        retentionPeriod: Duration.days(4),
        deadLetterQueue: { queue: dlq, maxReceiveCount: cfg.maxReceives },
      });
      this.queues[f.queue] = { queue, dlq, readerTimeout: f.timeout };
    }
    const q = (name: string) => this.queues[name].queue;

    // S3 -> SQS, set on the L1 bucket: CDK's addEventNotification makes a Lambda-backed custom
    // resource, which LocalStack's community edition silently ignores. Captures under uploads/
    // go to the splitter; federated updates' manifests (fl/updates/.../*.json, written after
    // their payload) to the merge function.
    const notified: { queue: sqs.Queue; rules: s3.CfnBucket.FilterRuleProperty[] }[] = [
      { queue: q('uploads'), rules: [{ name: 'prefix', value: 'uploads/' }] },
      { queue: q('fl'), rules: [{ name: 'prefix', value: 'fl/updates/' }, { name: 'suffix', value: '.json' }] },
    ];
    const cfnBucket = bucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = {
      queueConfigurations: notified.map((n) => ({
        event: 's3:ObjectCreated:*',
        queue: n.queue.queueArn,
        filter: { s3Key: { rules: n.rules } },
      })),
    };
    for (const n of notified) {
      n.queue.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CaptureBucketNotifications',
          principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
          actions: ['sqs:SendMessage'],
          resources: [n.queue.queueArn],
          conditions: {
            ArnLike: { 'aws:SourceArn': bucketArn },
            StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          },
        }),
      );
      // S3 checks that it may send to the queue when the notification is set.
      const policy = n.queue.node.tryFindChild('Policy');
      if (policy) cfnBucket.node.addDependency(policy);
    }

    // ---- who may touch which prefix -------------------------------------------------------
    // Object permissions end in a wildcard by nature (the keys under a prefix); each is
    // acknowledged to cdk-nag with the prefix it is limited to.
    const bucketId = this.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
    const objects = (who: iam.IGrantable, actions: string[], patterns: string[]) => {
      who.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions, resources: patterns.map((p) => bucket.arnForObjects(p)) }),
      );
      ack(
        who.grantPrincipal as unknown as Construct,
        patterns.map((p) => ({
          id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${p}]`,
          reason: `Objects under ${p.replace(/\*$/, '')} only: the keys there are made at run time (capture ids, shard numbers, rounds, versions).`,
        })),
      );
    };
    const listing = (who: iam.IGrantable, prefixes: string[]) =>
      who.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } },
        }),
      );

    // ---- alarms ---------------------------------------------------------------------------
    this.alarms = new sns.Topic(this, 'Alarms', { displayName: 'weir alarms', enforceSSL: true });
    ack(this.alarms, [
      {
        id: 'AwsSolutions-SNS2',
        reason:
          'Alarm notifications carry no capture data (alarm name, metric, threshold); CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a customer key costs $1/month for nothing to protect.',
      },
    ]);
    if (cfg.alarmEmail) this.alarms.addSubscription(new subs.EmailSubscription(cfg.alarmEmail));
    // Every alarm: one period, missing data is fine (no traffic), notifies the topic.
    const alarm = (id: string, props: Omit<cw.AlarmProps, 'evaluationPeriods' | 'treatMissingData'>) =>
      new cw.Alarm(this, id, { ...props, evaluationPeriods: 1, treatMissingData: cw.TreatMissingData.NOT_BREACHING })
        .addAlarmAction(new cw_actions.SnsAction(this.alarms));
    for (const [name, pair] of Object.entries(this.queues)) {
      alarm(`${cap(name)}DlqDepth`, {
        alarmName: `${cfg.prefix}-${name}-dlq-not-empty`,
        alarmDescription: `Messages in ${pair.dlq.queueName}: work that failed ${cfg.maxReceives} times (see docs/DEPLOY.md, "When an alarm fires").`,
        metric: pair.dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      });
      // Older than two of its reader's timeouts: nothing is taking the work.
      const age = Math.max(2 * pair.readerTimeout, 900);
      alarm(`${cap(name)}OldestMessage`, {
        alarmName: `${cfg.prefix}-${name}-stuck`,
        alarmDescription: `The oldest message in ${pair.queue.queueName} is older than ${age} s: nothing takes the work.`,
        metric: pair.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' }),
        threshold: age,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      });
    }

    // ---- functions ------------------------------------------------------------------------
    const env = {
      WEIR_BUCKET: bucket.bucketName,
      WEIR_SHARD_QUEUE: q('shards').queueUrl,
      WEIR_AGGREGATE_QUEUE: q('aggregate').queueUrl,
      WEIR_MAX_RECEIVES: String(cfg.maxReceives),
      RUST_LOG: 'info',
      ...trust,
    };
    // A function of weir's: its own log group (with retention), its own role (that log group
    // and nothing else until granted), an alarm on its errors.
    const lambdaFn = (
      key: string,
      props: Omit<lambda.FunctionProps, 'functionName' | 'runtime' | 'architecture' | 'role' | 'logGroup'>,
    ): lambda.Function => {
      const functionName = `${cfg.prefix}-${key}`;
      const logGroup = new logs.LogGroup(this, `${cap(key)}Logs`, {
        logGroupName: `/aws/lambda/${functionName}`,
        retention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const role = new iam.Role(this, `${cap(key)}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `weir ${key} function: its own prefixes and queues only`,
      });
      logGroup.grantWrite(role);
      const func = new lambda.Function(this, cap(key), {
        ...props,
        functionName,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.X86_64,
        role,
        logGroup,
      });
      alarm(`${cap(key)}Errors`, {
        alarmName: `${functionName}-errors`,
        alarmDescription: `${functionName} failed invocations (its log group: ${logGroup.logGroupName}).`,
        metric: func.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      });
      return func;
    };
    // A pipeline function (infra/settings.json), fed by its queue.
    const fn = (key: string, extra: Record<string, string> = {}): lambda.Function => {
      const f: FunctionSettings = FUNCTIONS[key];
      const func = lambdaFn(key, {
        description: `weir ${key} (${f.binary}, built by scripts/lambda-zips.sh)`,
        handler: 'bootstrap',
        code: lambda.Code.fromAsset(artifact(cfg, f.binary)),
        memorySize: f.memory,
        timeout: Duration.seconds(f.timeout),
        environment: { ...env, ...extra },
      });
      // Disabled on LocalStack: weir-lambda-local takes the messages there and runs the
      // real binaries; LocalStack's own poller must not take them from it.
      func.addEventSource(
        new sources.SqsEventSource(q(f.queue), {
          batchSize: f.batch,
          maxBatchingWindow: f.batch > 1 ? Duration.seconds(5) : undefined,
          reportBatchItemFailures: true,
          enabled: !local,
        }),
      );
      this.functions[key] = func;
      return func;
    };

    // Splitter: reads uploads/, writes captures/ID/ (an upload under a key seen before
    // replaces what the earlier one left: delete), sends shards and, for a capture with no
    // flows, straight to aggregation.
    const splitter = fn('splitter');
    objects(splitter, ['s3:GetObject'], ['uploads/*']);
    objects(splitter, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], ['captures/*']);
    listing(splitter, ['uploads/', 'captures/']);
    q('shards').grantSendMessages(splitter);
    q('aggregate').grantSendMessages(splitter);

    // Classifier (Lambda, CPU), unless the GPU service classifies: reads shards, writes
    // results and status, follows the model registry.
    const classifierGrants = (who: iam.IGrantable) => {
      objects(who, ['s3:GetObject', 's3:PutObject'], ['captures/*']);
      objects(who, ['s3:GetObject'], ['registry/*']);
      listing(who, ['captures/', 'registry/']);
      q('aggregate').grantSendMessages(who);
    };
    if (!cfg.gpu) {
      classifierGrants(fn('classifier', { WEIR_MODEL_REGISTRY: 'bucket', WEIR_THREADS: '0' }));
    }

    // Aggregator: captures/ID/ in, summary and search layout out.
    const aggregator = fn('aggregator');
    objects(aggregator, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], ['captures/*']);
    listing(aggregator, ['captures/']);

    // Merge: reads updates, node keys and the evaluation set under fl/, writes verdicts,
    // round results and its state under fl/, publishes versions under registry/.
    const merge = fn('merge');
    objects(merge, ['s3:GetObject'], ['fl/*', 'registry/*']);
    objects(merge, ['s3:PutObject'], ['fl/rounds/*', 'fl/state/*', 'registry/*']);
    listing(merge, ['fl/', 'registry/']);

    // Rounds close at quorum (an update arrives) or at their deadline: this tick wakes the
    // merge when no update comes. Any message does; this one says what it is.
    new events.Rule(this, 'FlDeadlineTick', {
      description: 'Wakes the weir merge function to close federated rounds past their deadline.',
      schedule: events.Schedule.rate(Duration.minutes(cfg.flTickMinutes)),
      targets: [
        new targets.SqsQueue(q('fl'), {
          message: events.RuleTargetInput.fromObject({ weir: 'fl-deadline-tick' }),
        }),
      ],
    });

    // ---- edge nodes -----------------------------------------------------------------------
    // One role per node: it writes only under fl/updates/round-NNNNNN/NODE/ (six characters
    // for the round, so no '*' can reach into another node's prefix) and its alerts under
    // edge/NODE/, reads the registry and its own verdicts. The operator registers each node's key (fl/nodes/NODE.pub) with
    // weir fl add-node; a node cannot.
    for (const node of cfg.edgeNodes) {
      const id = cap(node.replace(/[^A-Za-z0-9]/g, ''));
      const role = new iam.Role(this, `Edge${id}`, {
        assumedBy: new iam.AccountRootPrincipal(),
        description: `weir edge node ${node}: pushes updates under fl/updates/*/${node}/ and alerts under edge/${node}/ only`,
        maxSessionDuration: Duration.hours(12),
      });
      objects(role, ['s3:PutObject'], [`fl/updates/round-??????/${node}/*`, `edge/${node}/*`]);
      objects(role, ['s3:GetObject'], ['registry/*', `fl/rounds/round-??????/verdicts/${node}/*`]);
      listing(role, ['registry/']);
      new CfnOutput(this, `EdgeRole${id}`, {
        description: `Role edge node ${node} assumes (aws sts assume-role) to push its updates`,
        value: role.roleArn,
      });
    }

    // ---- GPU classifier (optional) --------------------------------------------------------
    if (cfg.gpu) this.gpuService(cfg, classifierGrants, retention);

    // ---- web app (optional) ---------------------------------------------------------------
    if (cfg.web) {
      const token = new secrets.Secret(this, 'WebToken', {
        description: 'Bearer token of the weir web app (weir serve --token); open the URL once with ?token=TOKEN',
        generateSecretString: { excludePunctuation: true, passwordLength: 40 },
      });
      ack(token, [
        {
          id: 'AwsSolutions-SMG4',
          reason:
            'The token is read into the web function at deploy; rotating it means a redeploy (docs/DEPLOY.md says how). Automatic rotation would silently lock analysts out until then.',
        },
      ]);
      const web = lambdaFn('web', {
        description: 'weir serve --bucket behind the Lambda Web Adapter (scripts/lambda-zips.sh builds weir-web.zip)',
        handler: 'run.sh',
        code: lambda.Code.fromAsset(artifact(cfg, 'weir-web')),
        layers: [
          lambda.LayerVersion.fromLayerVersionArn(
            this,
            'WebAdapter',
            `arn:aws:lambda:${Aws.REGION}:753240598075:layer:LambdaAdapterLayerX86:${cfg.webAdapterLayerVersion}`,
          ),
        ],
        memorySize: 2048,
        timeout: Duration.seconds(30),
        environment: {
          AWS_LAMBDA_EXEC_WRAPPER: '/opt/bootstrap',
          AWS_LWA_PORT: '8080',
          WEIR_BUCKET: bucket.bucketName,
          // resolved by CloudFormation at deploy (a dynamic reference), not written in the template
          WEIR_TOKEN: token.secretValue.unsafeUnwrap(),
          RUST_LOG: 'info',
          ...trust,
        },
      });
      objects(web, ['s3:GetObject'], ['captures/*', 'registry/*']);
      objects(web, ['s3:PutObject'], ['uploads/*']);
      listing(web, ['uploads/', 'captures/', 'registry/']);
      // Public URL, every request checked against the bearer token by weir serve itself.
      const url = web.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
      new CfnOutput(this, 'WebUrl', { description: 'The web app (open once with ?token=TOKEN)', value: url.url });
      new CfnOutput(this, 'WebTokenCommand', {
        description: 'Prints the web app token',
        value: `aws secretsmanager get-secret-value --secret-id ${token.secretArn} --query SecretString --output text`,
      });
    }

    // ---- outputs --------------------------------------------------------------------------
    new CfnOutput(this, 'BucketName', { description: 'The capture bucket', value: bucket.bucketName });
    new CfnOutput(this, 'UploadCommand', {
      description: 'Analyze a capture: upload it under uploads/',
      value: `aws s3 cp CAPTURE.pcap s3://${bucket.bucketName}/uploads/`,
    });
    new CfnOutput(this, 'StatusCommand', {
      description: 'The captures and their state (weir-status from the release build)',
      value: `WEIR_BUCKET=${bucket.bucketName} weir-status --watch`,
    });
    for (const [name, pair] of Object.entries(this.queues)) {
      new CfnOutput(this, `${cap(name)}QueueUrl`, { value: pair.queue.queueUrl });
      new CfnOutput(this, `${cap(name)}DlqUrl`, { value: pair.dlq.queueUrl });
    }
    new CfnOutput(this, 'AlarmTopic', {
      description: 'Alarms publish here (subscribe: aws sns subscribe --protocol email ...)',
      value: this.alarms.topicArn,
    });
  }

  /** The GPU classifier: weir-worker on GPU instances (ECS), scaled on the shard queue's
   * backlog from zero (no instance, no cost) to cfg.maxGpuTasks. */
  private gpuService(
    cfg: WeirConfig,
    grants: (who: iam.IGrantable) => void,
    retention: logs.RetentionDays,
  ) {
    const shards = this.queues['shards'].queue;
    const trust = registryTrust(cfg);
    // Public subnets and no NAT gateway (about $32/month each): the hosts reach S3, SQS and
    // ECS over the internet gateway; nothing can connect to them (no inbound rule).
    const vpc = new ec2.Vpc(this, 'GpuVpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, mapPublicIpOnLaunch: false }],
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(
            new logs.LogGroup(this, 'GpuVpcFlowLogs', { retention, removalPolicy: RemovalPolicy.DESTROY }),
          ),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });
    const cluster = new ecs.Cluster(this, 'GpuCluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const hosts = new autoscaling.AutoScalingGroup(this, 'GpuHosts', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      associatePublicIpAddress: true,
      instanceType: new ec2.InstanceType(cfg.gpuInstanceType),
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
      minCapacity: 0,
      maxCapacity: cfg.maxGpuTasks,
      requireImdsv2: true,
      blockDevices: [
        { deviceName: '/dev/xvda', volume: autoscaling.BlockDeviceVolume.ebs(100, { encrypted: true }) },
      ],
    });
    const capacity = new ecs.AsgCapacityProvider(this, 'GpuCapacity', {
      autoScalingGroup: hosts,
      enableManagedScaling: true,
      enableManagedTerminationProtection: false,
      // ECS drains an instance before it ends (no Lambda drain hook of CDK's own)
      enableManagedDraining: true,
    });
    cluster.addAsgCapacityProvider(capacity);

    const task = new ecs.Ec2TaskDefinition(this, 'GpuTask');
    grants(task.taskRole);
    task.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        resources: [shards.queueArn],
      }),
    );
    task.addContainer('worker', {
      // infra/gpu-worker/Dockerfile: built by `cdk deploy` where Docker runs (not on the
      // machine weir is developed on, which has no Docker engine).
      image: ecs.ContainerImage.fromAsset(path.join(__dirname, '..', '..', 'gpu-worker')),
      gpuCount: 1,
      memoryReservationMiB: 8192,
      environment: {
        WEIR_BUCKET: this.bucket.bucketName,
        WEIR_SHARD_QUEUE: shards.queueUrl,
        WEIR_AGGREGATE_QUEUE: this.queues['aggregate'].queue.queueUrl,
        WEIR_MAX_RECEIVES: String(cfg.maxReceives),
        WEIR_DEVICE: 'cuda',
        WEIR_MODEL_REGISTRY: 'bucket',
        RUST_LOG: 'info',
        ...trust,
      },
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'gpu-worker',
        logGroup: new logs.LogGroup(this, 'GpuWorkerLogs', { retention, removalPolicy: RemovalPolicy.DESTROY }),
      }),
    });
    const service = new ecs.Ec2Service(this, 'GpuWorker', {
      cluster,
      taskDefinition: task,
      desiredCount: 0,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { rollback: true },
      capacityProviderStrategies: [{ capacityProvider: capacity.capacityProviderName, weight: 1 }],
    });
    // The backlog: waiting plus in flight, so a busy worker is not scaled in under its batch.
    const backlog = new cw.MathExpression({
      label: 'shard backlog',
      expression: 'visible + inflight',
      usingMetrics: {
        visible: shards.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum' }),
        inflight: shards.metricApproximateNumberOfMessagesNotVisible({ statistic: 'Maximum' }),
      },
      period: Duration.minutes(1),
    });
    const scaling = service.autoScaleTaskCount({ minCapacity: 0, maxCapacity: cfg.maxGpuTasks });
    scaling.scaleOnMetric('ShardBacklog', {
      metric: backlog,
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      scalingSteps: [
        { upper: 0, change: 0 }, // nothing queued or in flight: no task, and no GPU instance
        { lower: 1, change: 1 },
        { lower: 2000, change: cfg.maxGpuTasks },
      ],
      evaluationPeriods: 1,
      cooldown: Duration.minutes(5),
    });
    new CfnOutput(this, 'GpuService', { description: 'The GPU classifier service (ECS)', value: service.serviceName });

    ack(task,
      [
        { id: 'AwsSolutions-ECS2', reason: 'The environment holds names and switches (bucket, queue URLs, device), no secrets.' },
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: 'The task execution role pulls the image: ecr:GetAuthorizationToken takes no resource.',
        },
      ],
    );
    ack(hosts,
      [
        { id: 'AwsSolutions-EC26', reason: 'The root volume is encrypted (blockDevices encrypted: true); the ECS AMI has no other volume.' },
        { id: 'AwsSolutions-AS3', reason: 'Scaling activity is visible in ECS and the shard queue alarms; no separate notification topic.' },
        {
          id: 'AwsSolutions-IAM5[Action::ecs:Submit*]',
          reason: "CDK's ECS instance role: the ECS agent reports container and task state (ecs:Submit*), scoped to this cluster.",
        },
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: "CDK's ECS instance role: ecs:DiscoverPollEndpoint, ecr:GetAuthorizationToken and the like take no resource.",
        },
      ],
    );
  }
}

/** Acknowledge cdk-nag findings on a construct (and what it holds), each with its reason. */
function ack(scope: Construct, findings: { id: string; reason: string }[]) {
  Validations.of(scope).acknowledge(...findings);
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function logRetention(days: number): logs.RetentionDays {
  const allowed = Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number');
  const best = allowed.filter((v) => v >= days).sort((a, b) => a - b)[0];
  if (best === undefined) throw new Error(`weir:logRetentionDays=${days}: more than CloudWatch Logs keeps`);
  return best as logs.RetentionDays;
}

/** What every reader of the model registry is told to trust: pointers the registry key signed
 * (the merge function signs with its key, fl/keys/registry.key, which only it may read). */
function registryTrust(cfg: WeirConfig): Record<string, string> {
  return cfg.registryPublicKey ? { WEIR_REGISTRY_PUBKEY: cfg.registryPublicKey } : {};
}
