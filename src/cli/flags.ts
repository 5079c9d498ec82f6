/** oclif flag types shared by commands. */
import { Flags } from '@oclif/core'
import { type Lsn, parseLsn } from '../postgres/lsn.js'

export const lsnFlag = Flags.custom<Lsn>({
  helpValue: 'X/X',
  parse: async (input) => parseLsn(input),
})
