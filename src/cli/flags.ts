/** oclif flag and argument types shared by commands. */
import { Args, Flags } from '@oclif/core'
import { type Lsn, parseLsn } from '../postgres/lsn.js'

export const lsnFlag = Flags.custom<Lsn>({
  helpValue: 'X/X',
  parse: async (input) => parseLsn(input),
})

/** The safekeeper a command works on; without it, commands that take it work on all of them. */
export const pageserverIdArg = Args.integer({
  description: 'the pageserver id (default: 1, the one `zenith init` made)',
  min: 1,
  default: 1,
})

export const safekeeperIdArg = Args.integer({
  description: 'the safekeeper id (default: every safekeeper of the cluster)',
  min: 1,
})

/** `--tenant-id` of commands that work on an existing tenant. */
export const tenantIdFlag = Flags.string({ summary: 'the tenant (default: the default tenant)' })

/** The branch a command looks at or works on. */
export const branchArg = Args.string({ description: 'branch name', required: true })
