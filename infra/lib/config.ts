// The stack's settings: CDK context (`-c weir:KEY=VALUE` or cdk.json), checked, with defaults.
// One place, so `bin/weir.ts`, the tests and localstack/deploy.py build the same stack.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import settings from '../settings.json';

export type Target = 'aws' | 'localstack';

export interface WeirConfig {
  /** `aws` (a real account) or `localstack` (see docs/DEPLOY.md, "LocalStack"). */
  target: Target;
  /** Directory with the function zips (`<binary>.zip`, `weir-web.zip`): scripts/lambda-zips.sh
   * ($WEIR_LAMBDA_ZIPS, else $CARGO_TARGET_DIR/lambda-zips, else ~/.cache/weir/target/lambda-zips). */
  artifacts: string;
  /** Names: the queues are PREFIX-uploads, PREFIX-shards, ...; the functions PREFIX-splitter, ... */
  prefix: string;
  /** The capture bucket's name; default PREFIX-captures-ACCOUNT-REGION (LocalStack: PREFIX). */
  bucketName?: string;
  /** Classify on GPU hosts (an ECS service scaled on the shard queue) instead of Lambda. */
  gpu: boolean;
  gpuInstanceType: string;
  maxGpuTasks: number;
  /** The web app as a Lambda function URL (weir serve behind the Lambda Web Adapter). */
  web: boolean;
  webAdapterLayerVersion: number;
  /** Edge nodes of federated learning: one role each, writing only its own prefix. */
  edgeNodes: string[];
  /** The registry key's public half (hex, `weir fl init` prints it): the classifiers, the GPU
   * worker and the web app refuse registry pointers it did not sign. */
  registryPublicKey?: string;
  /** Alarms go to an SNS topic; this address is subscribed to it when given. */
  alarmEmail?: string;
  logRetentionDays: number;
  /** Raw captures under uploads/ move to Infrequent Access after 30 days, expire after this. */
  rawCaptureDays: number;
  /** How often the merge function is woken to close federated rounds past their deadline. */
  flTickMinutes: number;
  /** Deliveries before a message goes to its dead-letter queue (WEIR_MAX_RECEIVES). */
  maxReceives: number;
  /** Seconds a received message stays hidden; unset: six times its reader's timeout. */
  visibility?: number;
}

export interface FunctionSettings {
  binary: string;
  queue: string;
  timeout: number;
  memory: number;
  batch: number;
}

export const FUNCTIONS: Record<string, FunctionSettings> = settings.functions;
export const MAX_RECEIVES: number = settings.maxReceives;

type Context = (key: string) => unknown;

function str(ctx: Context, key: string, dflt?: string): string | undefined {
  const v = ctx(`weir:${key}`);
  if (v === undefined || v === null || v === '') return dflt;
  return String(v);
}

function bool(ctx: Context, key: string, dflt: boolean): boolean {
  const v = str(ctx, key);
  if (v === undefined) return dflt;
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw new Error(`weir:${key}=${v}: expected true or false`);
}

function int(ctx: Context, key: string, dflt: number | undefined, min: number): number | undefined {
  const v = str(ctx, key);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`weir:${key}=${v}: expected a whole number >= ${min}`);
  return n;
}

/** The settings from CDK context; errors name the key and the value given. */
export function fromContext(ctx: Context, infraDir: string): WeirConfig {
  const target = str(ctx, 'target', 'aws') as string;
  if (target !== 'aws' && target !== 'localstack') {
    throw new Error(`weir:target=${target}: expected aws or localstack`);
  }
  const prefix = str(ctx, 'prefix', 'weir') as string;
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(prefix)) {
    throw new Error(`weir:prefix=${prefix}: a lower-case letter, then letters, digits and '-', at most 20 in all`);
  }
  const edgeNodes = (str(ctx, 'edgeNodes', 'edge-1') as string)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const n of edgeNodes) {
    // the same rule as a node name in weir fl (a path component of fl/updates/round-R/NODE/)
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(n)) {
      throw new Error(`weir:edgeNodes: ${JSON.stringify(n)} is not a node name (letters, digits, '-', '_')`);
    }
  }
  const registryPublicKey = str(ctx, 'registryPublicKey');
  if (registryPublicKey !== undefined && !/^[0-9a-f]{64}$/.test(registryPublicKey)) {
    throw new Error(
      `weir:registryPublicKey=${registryPublicKey}: expected 64 hex digits (an Ed25519 public key, as weir fl init prints it)`,
    );
  }
  const local = target === 'localstack';
  // where scripts/lambda-zips.sh puts them
  const zips =
    process.env.WEIR_LAMBDA_ZIPS ??
    path.join(process.env.CARGO_TARGET_DIR ?? path.join(os.homedir(), '.cache', 'weir', 'target'), 'lambda-zips');
  const artifacts = path.resolve(infraDir, str(ctx, 'artifacts', zips) as string);
  return {
    target,
    artifacts,
    prefix,
    bucketName: str(ctx, 'bucketName', local ? prefix : undefined),
    // neither exists on LocalStack's community edition: ECS, and layers from another account
    gpu: !local && bool(ctx, 'gpu', false),
    gpuInstanceType: str(ctx, 'gpuInstanceType', 'g5.xlarge') as string,
    maxGpuTasks: int(ctx, 'maxGpuTasks', 2, 1) as number,
    web: !local && bool(ctx, 'web', true),
    webAdapterLayerVersion: int(ctx, 'webAdapterLayerVersion', 27, 1) as number,
    edgeNodes,
    registryPublicKey,
    alarmEmail: str(ctx, 'alarmEmail'),
    logRetentionDays: int(ctx, 'logRetentionDays', 30, 1) as number,
    rawCaptureDays: int(ctx, 'rawCaptureDays', 365, 31) as number,
    flTickMinutes: int(ctx, 'flTickMinutes', 15, 1) as number,
    maxReceives: int(ctx, 'maxReceives', MAX_RECEIVES, 1) as number,
    visibility: int(ctx, 'visibility', undefined, 0),
  };
}

/** The zip of one function, with what to do when it is not built. */
export function artifact(cfg: WeirConfig, name: string): string {
  const zip = path.join(cfg.artifacts, `${name}.zip`);
  if (!fs.existsSync(zip)) {
    throw new Error(
      `${zip} is not there: build the function zips first (bash scripts/lambda-zips.sh, or just lambda-zips), ` +
        `or point -c weir:artifacts=DIR at a directory that holds ${name}.zip`,
    );
  }
  return zip;
}
