/**
 * The one output writer of the CLI. Commands hand it typed data; it decides how that looks to a person:
 * tables whose columns are measured on the visible text (escape codes take no room), colour only on a TTY
 * and never with NO_COLOR, sizes in IEC units, branch trees drawn with ┣━ ┗━ ┃. Under `--json` nothing here
 * is used: oclif prints the command's return value, in bytes and LSN strings, as it is.
 */
import { stripVTControlCharacters } from 'node:util'
import { Chalk, type ChalkInstance } from 'chalk'

/**
 * Colour for a stream: NO_COLOR (any non-empty value, no-color.org) always wins; FORCE_COLOR turns it on
 * without a TTY (tests, `less -R`); otherwise only a TTY gets it.
 */
export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false'
  return stream.isTTY === true
}

export function visibleWidth(text: string): number {
  return stripVTControlCharacters(text).length
}

export interface TreeNode {
  /** The line drawn for this node, after the tree's lines. */
  label: string
  children: readonly TreeNode[]
}

export class Output {
  readonly color: ChalkInstance

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.color = new Chalk({ level: colorEnabled(stream, env) ? 1 : 0 })
  }

  write(text: string): void {
    this.stream.write(text.endsWith('\n') ? text : `${text}\n`)
  }

  /** Left-aligned columns two spaces apart, the header in bold. */
  table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
    const widths = headers.map((h, i) =>
      Math.max(visibleWidth(h), ...rows.map((r) => visibleWidth(r[i] ?? ''))),
    )
    const line = (cells: readonly string[]) =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i] - visibleWidth(c))))
        .join('  ')
        .trimEnd()
    return [this.color.bold(line(headers)), ...rows.map(line)].join('\n')
  }

  /** `key   value` lines with the keys padded to one width. */
  fields(rows: readonly (readonly [string, string])[]): string {
    const width = Math.max(...rows.map(([k]) => visibleWidth(k)))
    return rows.map(([k, v]) => `${k}${' '.repeat(width - visibleWidth(k))}  ${v}`).join('\n')
  }

  /** Roots at the left; each child under its parent, the last one with ┗━ and the others with ┣━. */
  tree(roots: readonly TreeNode[]): string {
    const lines: string[] = []
    const walk = (nodes: readonly TreeNode[], prefix: string, top: boolean) => {
      nodes.forEach((n, i) => {
        const last = i === nodes.length - 1
        lines.push(top ? n.label : `${prefix}${last ? '┗━ ' : '┣━ '}${n.label}`)
        walk(n.children, top ? '' : `${prefix}${last ? '   ' : '┃  '}`, false)
      })
    }
    walk(roots, '', true)
    return lines.join('\n')
  }

  good(text: string): string {
    return this.color.green(text)
  }

  bad(text: string): string {
    return this.color.red(text)
  }

  warn(text: string): string {
    return this.color.yellow(text)
  }

  dim(text: string): string {
    return this.color.dim(text)
  }

  bold(text: string): string {
    return this.color.bold(text)
  }
}
