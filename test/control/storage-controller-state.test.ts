/** The storage controller's rules for generations, and that its state file survives a reopen. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { StorageControllerState } from '../../src/control/storage-controller-state.js'

const root = mkdtempSync(path.join(tmpdir(), 'zenith-sc-state-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const T1 = '11111111111111111111111111111111'
const T2 = '22222222222222222222222222222222'
const T3 = '33333333333333333333333333333333'
const fresh = () => StorageControllerState.open(mkdtempSync(path.join(root, 'sc-')))

describe('StorageControllerState', () => {
  it('attach: the first generation is 1, each attach issues the next, with its node and mode', () => {
    const s = fresh()
    expect(s.attach(T1, 1)).toBe(1)
    expect(s.get(T1)).toEqual({ generation: 1, node_id: 1, mode: 'AttachedSingle' })
    expect(s.attach(T1, 2, 'AttachedMulti')).toBe(2)
    expect(s.get(T1)).toEqual({ generation: 2, node_id: 2, mode: 'AttachedMulti' })
    expect(s.attach(T2, 1)).toBe(1)
  })

  it('setMode keeps the generation and refuses a node that is not the tenant’s', () => {
    const s = fresh()
    s.attach(T1, 1)
    s.attach(T1, 2, 'AttachedMulti')
    expect(s.setMode(T1, 2, 'AttachedSingle')).toEqual({ generation: 2, node_id: 2, mode: 'AttachedSingle' })
    expect(() => s.setMode(T1, 1, 'AttachedStale')).toThrow(/tenant 1{32} is attached to pageserver 2, not 1/)
    expect(() => s.setMode(T2, 1, 'Secondary')).toThrow(/tenant 2{32} is not attached anywhere/)
    expect(() => s.setMode(T1, 2, 'Detached' as never)).toThrow(
      /mode must be one of AttachedSingle, AttachedMulti, AttachedStale, Secondary, got "Detached"/,
    )
    expect(s.get(T1)?.mode).toBe('AttachedSingle')
  })

  it('detach forgets the tenant; a new attach starts again at the next generation it gets', () => {
    const s = fresh()
    s.attach(T1, 1)
    s.detach(T1)
    expect(s.get(T1)).toBeUndefined()
    expect(s.list()).toEqual([])
    expect(() => s.detach(T1)).toThrow(/not attached anywhere/)
  })

  it('reAttach bumps every tenant of that node only, and returns each with its mode', () => {
    const s = fresh()
    s.attach(T1, 1)
    s.attach(T2, 1, 'AttachedStale')
    s.attach(T3, 2)
    expect(s.reAttach(1)).toEqual([
      { id: T1, gen: 2, mode: 'AttachedSingle' },
      { id: T2, gen: 2, mode: 'AttachedStale' },
    ])
    expect(s.reAttach(1).map((t) => t.gen)).toEqual([3, 3])
    expect(s.get(T3)?.generation).toBe(1)
    expect(s.reAttach(7)).toEqual([])
  })

  it('validate: only the current generation is valid; an unknown tenant is not', () => {
    const s = fresh()
    s.attach(T1, 1)
    s.attach(T1, 2)
    expect(
      s.validate([
        { id: T1, gen: 1 },
        { id: T1, gen: 2 },
        { id: T1, gen: 3 },
        { id: T2, gen: 1 },
      ]),
    ).toEqual([
      { id: T1, valid: false },
      { id: T1, valid: true },
      { id: T1, valid: false },
      { id: T2, valid: false },
    ])
  })

  it('is on disk after every change: a reopen sees it, in the documented format', () => {
    const dir = mkdtempSync(path.join(root, 'sc-'))
    const s = StorageControllerState.open(dir)
    s.attach(T1, 1)
    s.reAttach(1)
    s.attach(T2, 3, 'Secondary')
    const again = StorageControllerState.open(dir)
    expect(again.list()).toEqual(s.list())
    expect(JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8'))).toEqual({
      version: 1,
      tenants: {
        [T1]: { generation: 2, node_id: 1, mode: 'AttachedSingle' },
        [T2]: { generation: 1, node_id: 3, mode: 'Secondary' },
      },
    })
  })

  it('refuses a state file it cannot read, naming the file and the field', () => {
    const dir = mkdtempSync(path.join(root, 'sc-'))
    const file = path.join(dir, 'state.json')
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        tenants: { [T1]: { generation: 0, node_id: 1, mode: 'AttachedSingle' } },
      }),
    )
    expect(() => StorageControllerState.open(dir)).toThrow(
      `${file}: tenant ${T1}: generation must be a positive integer, got 0`,
    )
    writeFileSync(file, '{"version":2,"tenants":{}}')
    expect(() => StorageControllerState.open(dir)).toThrow(`${file}: version must be 1, got 2`)
  })

  it('a failed write changes nothing in memory', () => {
    const dir = mkdtempSync(path.join(root, 'sc-'))
    const s = StorageControllerState.open(dir)
    s.attach(T1, 1)
    rmSync(dir, { recursive: true })
    expect(() => s.attach(T1, 2)).toThrow()
    expect(s.get(T1)).toEqual({ generation: 1, node_id: 1, mode: 'AttachedSingle' })
  })
})
