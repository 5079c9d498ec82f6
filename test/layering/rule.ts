/** The dependency rule as data, and the checker the layering test runs over src/. */
import path from 'node:path'

/** For each folder under src/, the folders it may import (its own is always allowed). */
export const ALLOWED: Record<string, readonly string[]> = {
  lib: [],
  postgres: ['lib'],
  engine: ['postgres', 'lib'],
  protocol: ['postgres', 'lib'],
  pgdata: ['engine', 'postgres', 'lib'],
  pageserver: ['pgdata', 'engine', 'protocol', 'postgres', 'lib'],
  safekeeper: ['protocol', 'postgres', 'lib'],
  control: ['pageserver', 'safekeeper', 'pgdata', 'engine', 'protocol', 'postgres', 'lib'],
  cli: ['control', 'pageserver', 'safekeeper', 'pgdata', 'engine', 'protocol', 'postgres', 'lib'],
  tui: ['cli', 'control', 'pageserver', 'safekeeper', 'pgdata', 'engine', 'protocol', 'postgres', 'lib'],
  commands: [
    'cli',
    'tui',
    'control',
    'pageserver',
    'safekeeper',
    'pgdata',
    'engine',
    'protocol',
    'postgres',
    'lib',
  ],
}

/** Folders that hold storage and formats: a socket there would put the network below the engine. */
const NO_NETWORK = new Set(['lib', 'postgres', 'engine', 'pgdata'])
const NETWORK_MODULES = /^(node:)?(net|http|https|http2|dgram|tls)$/

export interface SourceFile {
  /** Relative to src/, with forward slashes. */
  path: string
  text: string
}

const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*'([^']+)'|import\(\s*'([^']+)'\s*\)|^import\s+'([^']+)'/gm

export function checkImports(files: readonly SourceFile[]): string[] {
  const problems: string[] = []
  for (const f of files) {
    const folder = f.path.split('/')[0]
    const allowed = ALLOWED[folder] ?? []
    for (const m of f.text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]
      if (spec.startsWith('.')) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f.path), spec)).split('/')[0]
        if (target === folder || allowed.includes(target)) continue
        const may =
          allowed.length === 0 ? 'may import nothing of ours' : `may import only ${allowed.join(', ')}`
        problems.push(`src/${f.path} imports ${spec}: ${folder} ${may}`)
      } else if (NO_NETWORK.has(folder) && NETWORK_MODULES.test(spec)) {
        problems.push(`src/${f.path} imports ${spec}: ${folder} has no network`)
      }
    }
  }
  return problems
}
