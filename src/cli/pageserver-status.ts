/** The part of a pageserver's status that both `zenith status` and `zenith pageserver status` print. */
import type { PageserverStatus } from '../control/pageserver-process.js'

/** For a pageserver that died: where its log is and how it ends, each line after `indent`; else ''. */
export function diedLines(s: PageserverStatus, indent = ''): string {
  if (s.state !== 'died') return ''
  const tail = s.last_log_lines ?? []
  const head = tail.length > 0 ? `its log ${s.log_file} ends:` : `its log ${s.log_file} is empty`
  return [head, ...tail.map((l) => `  ${l}`)].map((l) => `${indent}${l}\n`).join('')
}
