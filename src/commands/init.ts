import { Flags } from '@oclif/core'
import { ClusterCommand } from '../cli/cluster-command.js'
import { initSteps } from '../control/cluster.js'
import { parseSettings } from '../control/endpoints.js'
import { SAFEKEEPER_COUNTS, type SafekeeperCount } from '../control/safekeeper-process.js'
import { RemoteStorageConfigError, remoteStorageFromArgs } from '../pageserver/remote-storage-config.js'

/** The highest port base: safekeeper 5 listens on base + 5. */
const MAX_SK_PORT_BASE = 65535 - SAFEKEEPER_COUNTS[SAFEKEEPER_COUNTS.length - 1]

export const initFlags = {
  'pg-distrib-dir': Flags.string({
    summary: 'the PostgreSQL 15 installation (default /usr/lib/postgresql/15)',
  }),
  'pageserver-pg-port': Flags.integer({
    summary: 'port of the page service (default 64000)',
    min: 1,
    max: 65535,
  }),
  'pageserver-http-port': Flags.integer({
    summary: 'port of the HTTP API (default 9898)',
    min: 1,
    max: 65535,
  }),
  'compute-port-base': Flags.integer({
    summary: 'first port given to computes (default 55432)',
    min: 1,
    max: 65535,
  }),
  'num-safekeepers': Flags.custom<SafekeeperCount>({
    summary: 'how many safekeepers the cluster has: 0, 1, 3 or 5 (default 1)',
    description:
      "With 1, 3 or 5, every start of a writable compute is an election on the safekeepers and a commit returns once a majority has it on disk (docs/safekeeper.md). With 0, the pageserver is each compute's synchronous standby.",
    options: SAFEKEEPER_COUNTS.map(String),
    parse: async (input) => Number(input) as SafekeeperCount,
  })(),
  'safekeeper-pg-port-base': Flags.integer({
    summary: 'safekeeper N listens for libpq on this port + N (default 5454)',
    min: 1,
    max: MAX_SK_PORT_BASE,
  }),
  'safekeeper-http-port-base': Flags.integer({
    summary: 'safekeeper N serves its HTTP API on this port + N (default 7676)',
    min: 1,
    max: MAX_SK_PORT_BASE,
  }),
  'storage-controller-port': Flags.integer({
    summary: 'port of the storage controller, which issues the generations (default 1234, as neon_local)',
    min: 1,
    max: 65535,
  }),
  'tenant-config': Flags.string({
    char: 'c',
    summary: 'a default tenant config value as key=value (repeatable)',
    multiple: true,
  }),
  'remote-storage': Flags.string({
    summary: 'where the pageserver keeps its remote copy of every layer: a directory or s3://bucket/prefix',
    description:
      'Default: the directory remote_storage in the repo dir. For S3, credentials come from the AWS SDK: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment of the pageserver.',
    helpValue: '<dir | s3://bucket/prefix>',
  }),
  's3-endpoint': Flags.string({
    summary: 'an S3-compatible server for --remote-storage s3://…, as http://host:port (default AWS)',
    helpValue: '<url>',
  }),
  's3-region': Flags.string({
    summary: "the bucket's region (default the AWS SDK's: AWS_REGION or the profile)",
    helpValue: '<region>',
  }),
}

export function initOptions(flags: {
  'pg-distrib-dir'?: string
  'pageserver-pg-port'?: number
  'pageserver-http-port'?: number
  'compute-port-base'?: number
  'num-safekeepers'?: SafekeeperCount
  'safekeeper-pg-port-base'?: number
  'safekeeper-http-port-base'?: number
  'storage-controller-port'?: number
  'tenant-config'?: string[]
  'remote-storage'?: string
  's3-endpoint'?: string
  's3-region'?: string
}) {
  const remote = flags['remote-storage']
  if (remote === undefined && (flags['s3-endpoint'] !== undefined || flags['s3-region'] !== undefined))
    throw new RemoteStorageConfigError(
      '--s3-endpoint and --s3-region need --remote-storage s3://bucket/prefix',
    )
  return {
    pgDistribDir: flags['pg-distrib-dir'],
    pageserverPgPort: flags['pageserver-pg-port'],
    pageserverHttpPort: flags['pageserver-http-port'],
    computePortBase: flags['compute-port-base'],
    tenantDefaults: parseSettings(flags['tenant-config'] ?? []),
    numSafekeepers: flags['num-safekeepers'],
    safekeeperPortBases: {
      pgPortBase: flags['safekeeper-pg-port-base'],
      httpPortBase: flags['safekeeper-http-port-base'],
    },
    storageControllerPort: flags['storage-controller-port'],
    remoteStorage:
      remote === undefined
        ? undefined
        : remoteStorageFromArgs(remote, {
            s3Endpoint: flags['s3-endpoint'],
            s3Region: flags['s3-region'],
            cwd: process.cwd(),
          }),
  }
}

export default class Init extends ClusterCommand {
  static override summary =
    'create a local cluster: repo dir, pageserver and safekeeper configs, a default tenant with branch main'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --repo-dir /tmp/zenith --pageserver-http-port 19898 -c gc_horizon=1048576',
    '<%= config.bin %> <%= command.id %> --num-safekeepers 3 --safekeeper-pg-port-base 15454 --safekeeper-http-port-base 17676',
    '<%= config.bin %> <%= command.id %> --remote-storage s3://my-bucket/zenith --s3-endpoint http://127.0.0.1:5000 --s3-region us-east-1',
  ]
  static override flags = initFlags

  async run(): Promise<{ repo_dir: string; steps: string[] }> {
    const { flags } = await this.parse(Init)
    const repoDir = this.repoDir(flags)
    const steps = await this.locked(repoDir, () => this.runSteps(initSteps(repoDir, initOptions(flags))), {
      create: true,
    })
    return { repo_dir: repoDir, steps }
  }
}
