/** JSON over HTTP as tests call zenith's management APIs: status and parsed body, whatever the status. */

// biome-ignore lint/suspicious/noExplicitAny: tests read reply bodies field by field
export type JsonReply = { status: number; json: any }

/** `body` as a string is sent as it is (for malformed bodies), anything else as JSON. */
export async function jsonRequest(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<JsonReply> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : undefined }
}
