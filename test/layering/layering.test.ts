/**
 * The dependency rule of docs/architecture.md, checked by reading every import under src/: each folder may
 * import only the folders below it, and the storage layers below the network never open a socket.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ALLOWED, checkImports, type SourceFile } from './rule.js'

const SRC = path.resolve(import.meta.dirname, '../../src')

function sources(dir: string): SourceFile[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.tsx?$/.test(f))
    .map((f) => ({ path: f.split(path.sep).join('/'), text: readFileSync(path.join(dir, f), 'utf8') }))
}

describe('the dependency rule', () => {
  it('holds for every import under src/', () => {
    const files = sources(SRC)
    expect(files.length).toBeGreaterThan(100)
    expect(checkImports(files)).toEqual([])
  })

  it('knows every folder under src/', () => {
    const folders = new Set(sources(SRC).map((f) => f.path.split('/')[0]))
    for (const f of folders) expect(Object.keys(ALLOWED), `folder src/${f}`).toContain(f)
  })

  it('names an import that points up, sideways or to the network', () => {
    const files: SourceFile[] = [
      { path: 'engine/timeline.ts', text: "import { Pageserver } from '../pageserver/pageserver.js'\n" },
      {
        path: 'engine/gc.ts',
        text: "import { x } from '../pgdata/walingest.js'\nimport net from 'node:net'\n",
      },
      { path: 'postgres/lsn.ts', text: "import type { Key } from '../engine/key.js'\n" },
      { path: 'protocol/client.ts', text: "export { Timeline } from '../engine/timeline.js'\n" },
      { path: 'pgdata/import.ts', text: "const m = await import('../control/cluster.js')\n" },
      { path: 'lib/errors.ts', text: "import { formatLsn } from '../postgres/lsn.js'\n" },
      { path: 'engine/key.ts', text: "import { x } from './value.js'\nimport { y } from '../lib/ids.js'\n" },
      { path: 'commands/pg/list.ts', text: "import { x } from '../../control/endpoints.js'\n" },
    ]
    expect(checkImports(files)).toEqual([
      'src/engine/timeline.ts imports ../pageserver/pageserver.js: engine may import only postgres, lib',
      'src/engine/gc.ts imports ../pgdata/walingest.js: engine may import only postgres, lib',
      'src/engine/gc.ts imports node:net: engine has no network',
      'src/postgres/lsn.ts imports ../engine/key.js: postgres may import only lib',
      'src/protocol/client.ts imports ../engine/timeline.js: protocol may import only postgres, lib',
      'src/pgdata/import.ts imports ../control/cluster.js: pgdata may import only engine, postgres, lib',
      'src/lib/errors.ts imports ../postgres/lsn.js: lib may import nothing of ours',
    ])
  })
})
