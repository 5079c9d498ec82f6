/** The page service as a Postgres client sees it, for tests. */
import { query } from './sql.js'

/** `show <tenant_id>` over the simple query protocol: the effective tenant config, key by key, as text. */
export async function showTenantConfig(port: number, tenantId: string): Promise<Record<string, string>> {
  const rows = await query<Record<string, string>>(
    `postgresql://postgres@127.0.0.1:${port}/postgres`,
    `show ${tenantId}`,
  )
  if (rows.length !== 1) throw new Error(`show ${tenantId} returned ${rows.length} rows, expected 1`)
  return rows[0]
}
