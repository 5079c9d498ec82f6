/** The page service as psql sees it, for tests. */
import { execa } from 'execa'
import { pgBin } from './postgres.js'

/** `show <tenant_id>` through psql: the effective tenant config, key by key, as text. */
export async function showTenantConfig(port: number, tenantId: string): Promise<Record<string, string>> {
  const { stdout } = await execa(pgBin('psql'), [
    '-X',
    '-A',
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'postgres',
    '-c',
    `show ${tenantId}`,
  ])
  const [header, values] = stdout.split('\n')
  const cells = values.split('|')
  return Object.fromEntries(header.split('|').map((k, i) => [k, cells[i]]))
}
