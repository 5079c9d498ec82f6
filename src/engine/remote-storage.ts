/**
 * Remote storage as the engine sees it: a flat namespace of immutable objects under `/`-separated keys
 * (`tenants/<tenant>/timelines/<timeline>/<layer-name>-<generation>`). Every layer file and every
 * timeline's index lives here, so a pageserver whose disk is lost gets its tenants back, and a tenant
 * can move to another pageserver. Backends: a local directory (local-fs-storage.ts, here, since it is
 * only files) and S3 (the pageserver's, since it is network).
 *
 * The contract every backend keeps (test/engine/remote-storage-contract.ts runs it against each):
 * - an object is visible only whole: a reader never sees part of a put, and a put that failed or was
 *   killed leaves either nothing or the previous object;
 * - a put of an existing key replaces it (callers never rely on that: generations make keys unique);
 * - get of a missing key is a RemoteNotFoundError; delete of a missing key is not an error;
 * - list returns every object whose key starts with the prefix, sorted by key, with its size.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'

export interface RemoteObject {
  key: string
  size: number
}

export interface RemoteStorage {
  /** Stores `body` under `key`. */
  put(key: string, body: Buffer): Promise<void>
  /** Stores the file at `localPath` under `key`, streamed (layer files are up to hundreds of MiB). */
  putFile(key: string, localPath: string): Promise<void>
  /** The whole object. */
  get(key: string): Promise<Buffer>
  /** Downloads the object to `localPath` durably: a temp name, fsync, rename. */
  getFile(key: string, localPath: string): Promise<void>
  list(prefix: string): Promise<RemoteObject[]>
  delete(keys: readonly string[]): Promise<void>
  /** Where it stores, for logs and `zenith status` (`/path/to/dir`, `s3://bucket/prefix`). */
  readonly location: string
}

export class RemoteNotFoundError extends ZenithError {
  static override kind: ErrorKind = 'not_found'
  override name = 'RemoteNotFoundError'
}

export class RemoteStorageError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'RemoteStorageError'
}

/** Keys are relative, `/`-separated, without empty, `.` or `..` parts: they map onto files too. */
export function checkRemoteKey(key: string): void {
  const parts = key.split('/')
  if (key.length === 0 || parts.some((p) => p === '' || p === '.' || p === '..') || key.includes('\\'))
    throw new RemoteStorageError(
      `invalid remote key "${key}": keys are relative paths of non-empty parts separated by /`,
      { kind: 'bug' },
    )
}
