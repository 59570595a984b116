import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, openListeningApi } from './raw-http.ts'

/**
 * The single-order write routes' whole answers as bytes on the socket —
 * status line, every header in order, body — against the answers the
 * routes gave when they still awaited `submitOne` (recorded from `b2fe63b`):
 * answering from the order's result by callback must change no byte. Only
 * the `Date` header and the timestamps a write stamps from the clock are
 * masked; each request sends its own `X-Request-Id`. A read after each dry
 * run shows it wrote nothing.
 */
const requests: readonly (readonly [method: string, path: string, body?: string, headers?: Readonly<Record<string, string>>])[] = [
  ['POST', '/v2/main', '{}'],
  ['POST', '/v2/main/transactions', '{"postings":[{"source":"world","destination":"users:1","amount":100,"asset":"USD/2"}],"timestamp":"2026-01-02T03:04:05Z","metadata":{"a":"1"}}'],
  ['POST', '/v2/main/transactions/0/metadata', '{"b":"2"}', { 'idempotency-key': 'k1' }],
  ['POST', '/v2/main/transactions/0/metadata', '{"b":"2"}', { 'idempotency-key': 'k1' }],
  ['POST', '/v2/main/transactions/0/metadata', '{"b":"3"}', { 'idempotency-key': 'k1' }],
  ['POST', '/v2/main/transactions/0/metadata?dryRun=true', '{"c":"4"}'],
  ['GET', '/v2/main/transactions/0'],
  ['DELETE', '/v2/main/transactions/0/metadata/a'],
  ['POST', '/v2/main/transactions/9/metadata', '{"b":"2"}'],
  ['POST', '/v2/main/transactions/x/metadata', '{"b":"2"}'],
  ['POST', '/v2/main/transactions/0/metadata', '["not an object"]'],
  ['POST', '/v2/main/accounts/users:1/metadata', '{"tier":"gold"}'],
  ['POST', '/v2/main/accounts/users:1/metadata?dryRun=1', '{"tier":"silver"}'],
  ['GET', '/v2/main/accounts/users:1'],
  ['DELETE', '/v2/main/accounts/users:1/metadata/tier', undefined, { 'idempotency-key': 'k2' }],
  ['DELETE', '/v2/main/accounts/users:1/metadata/tier', undefined, { 'idempotency-key': 'k2' }],
  ['POST', '/v2/main/accounts/not%20an%20address/metadata', '{"tier":"gold"}'],
  ['POST', '/v2/main/transactions/0/revert?dryRun=true', ''],
  ['POST', '/v2/main/transactions/0/revert', '', { 'idempotency-key': 'k3' }],
  ['POST', '/v2/main/transactions/0/revert', '', { 'idempotency-key': 'k3' }],
  ['POST', '/v2/main/transactions/0/revert', ''],
  ['POST', '/v2/main/transactions/7/revert?force=maybe', ''],
  ['POST', '/v2/nowhere/transactions/0/revert', ''],
]

function rawRequest(i: number, method: string, path: string, body: string | undefined, headers: Readonly<Record<string, string>>): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: tally.test', `X-Request-Id: write-${i}`]
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`)
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`
}

function masked(text: string): string {
  return text
    .replace(/\r\nDate: [^\r]*/, '\r\nDate: (masked)')
    .replace(/"(insertedAt|updatedAt|revertedAt|insertionDate)":"[^"]*"/g, '"$1":"(masked)"')
    .replace(/"timestamp":"(?!2026-01-02T03:04:05\.000Z)[^"]*"/g, '"timestamp":"(masked)"')
}

async function answers(): Promise<string[]> {
  const api = await openListeningApi()
  try {
    const texts: string[] = []
    for (const [i, [method, path, body, headers]] of requests.entries()) {
      const connection = await connect(api.port)
      try {
        connection.write(rawRequest(i, method, path, body, headers ?? {}))
        await connection.response()
        texts.push(masked(connection.received()))
      } finally {
        connection.socket.destroy()
      }
    }
    return texts
  } finally {
    await api.close()
  }
}

test('single-order write routes: every answer byte for byte as before (status, headers in order, body)', async () => {
  const got = await answers()
  assert.deepEqual(got, expected)
})

const expected: readonly string[] = [
  "HTTP/1.1 204 No Content\r\nx-request-id: write-0\r\ntally-applied-index: 1\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 200 OK\r\nx-request-id: write-1\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 2\r\ncontent-length: 526\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"data\":{\"id\":0,\"postings\":[{\"source\":\"world\",\"destination\":\"users:1\",\"amount\":100,\"asset\":\"USD/2\"}],\"timestamp\":\"2026-01-02T03:04:05.000Z\",\"insertedAt\":\"(masked)\",\"updatedAt\":\"(masked)\",\"metadata\":{\"a\":\"1\"},\"reverted\":false,\"preCommitVolumes\":{\"users:1\":{\"USD/2\":{\"input\":0,\"output\":0,\"balance\":0}},\"world\":{\"USD/2\":{\"input\":0,\"output\":0,\"balance\":0}}},\"postCommitVolumes\":{\"users:1\":{\"USD/2\":{\"input\":100,\"output\":0,\"balance\":100}},\"world\":{\"USD/2\":{\"input\":0,\"output\":100,\"balance\":-100}}}}}",
  "HTTP/1.1 204 No Content\r\nx-request-id: write-2\r\ntally-applied-index: 3\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 204 No Content\r\nx-request-id: write-3\r\nidempotency-hit: true\r\ntally-applied-index: 4\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 400 Bad Request\r\nx-request-id: write-4\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 5\r\ncontent-length: 108\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"errorCode\":\"VALIDATION\",\"errorMessage\":\"idempotency key \\\"k1\\\" was already used with a different request\"}",
  "HTTP/1.1 204 No Content\r\nx-request-id: write-5\r\ntally-applied-index: 6\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 200 OK\r\nx-request-id: write-6\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 6\r\ncontent-length: 266\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"data\":{\"id\":0,\"postings\":[{\"source\":\"world\",\"destination\":\"users:1\",\"amount\":100,\"asset\":\"USD/2\"}],\"timestamp\":\"2026-01-02T03:04:05.000Z\",\"insertedAt\":\"(masked)\",\"updatedAt\":\"(masked)\",\"metadata\":{\"a\":\"1\",\"b\":\"2\"},\"reverted\":false}}",
  "HTTP/1.1 204 No Content\r\nx-request-id: write-7\r\ntally-applied-index: 7\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 404 Not Found\r\nx-request-id: write-8\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 8\r\ncontent-length: 66\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"errorCode\":\"NOT_FOUND\",\"errorMessage\":\"transaction 9 not found\"}",
  "HTTP/1.1 400 Bad Request\r\nx-request-id: write-9\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 8\r\ncontent-length: 107\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"errorCode\":\"VALIDATION\",\"errorMessage\":\"id: expected a transaction id (non-negative integer), got \\\"x\\\"\"}",
  "HTTP/1.1 400 Bad Request\r\nx-request-id: write-10\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 8\r\ncontent-length: 93\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"errorCode\":\"VALIDATION\",\"errorMessage\":\"body: expected an object of strings, got an array\"}",
  "HTTP/1.1 204 No Content\r\nx-request-id: write-11\r\ntally-applied-index: 9\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 204 No Content\r\nx-request-id: write-12\r\ntally-applied-index: 10\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 200 OK\r\nx-request-id: write-13\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 10\r\ncontent-length: 179\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"data\":{\"address\":\"users:1\",\"metadata\":{\"tier\":\"gold\"},\"insertionDate\":\"(masked)\",\"updatedAt\":\"(masked)\",\"firstUsage\":\"2026-01-02T03:04:05.000Z\"}}",
  "HTTP/1.1 204 No Content\r\nx-request-id: write-14\r\ntally-applied-index: 11\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 204 No Content\r\nx-request-id: write-15\r\nidempotency-hit: true\r\ntally-applied-index: 12\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
  "HTTP/1.1 400 Bad Request\r\nx-request-id: write-16\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 12\r\ncontent-length: 140\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"errorCode\":\"VALIDATION\",\"errorMessage\":\"address: invalid account address \\\"not an address\\\", expected ^[a-zA-Z0-9_-]+(:[a-zA-Z0-9_-]+)*$\"}",
  "HTTP/1.1 201 Created\r\nx-request-id: write-17\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 13\r\ncontent-length: 564\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"data\":{\"id\":1,\"postings\":[{\"source\":\"users:1\",\"destination\":\"world\",\"amount\":100,\"asset\":\"USD/2\"}],\"timestamp\":\"(masked)\",\"insertedAt\":\"(masked)\",\"updatedAt\":\"(masked)\",\"metadata\":{\"com.formance.spec/state/reverts\":\"0\"},\"reverted\":false,\"preCommitVolumes\":{\"users:1\":{\"USD/2\":{\"input\":100,\"output\":0,\"balance\":100}},\"world\":{\"USD/2\":{\"input\":0,\"output\":100,\"balance\":-100}}},\"postCommitVolumes\":{\"users:1\":{\"USD/2\":{\"input\":100,\"output\":100,\"balance\":0}},\"world\":{\"USD/2\":{\"input\":100,\"output\":100,\"balance\":0}}}}}",
  "HTTP/1.1 201 Created\r\nx-request-id: write-18\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 14\r\ncontent-length: 564\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"data\":{\"id\":1,\"postings\":[{\"source\":\"users:1\",\"destination\":\"world\",\"amount\":100,\"asset\":\"USD/2\"}],\"timestamp\":\"(masked)\",\"insertedAt\":\"(masked)\",\"updatedAt\":\"(masked)\",\"metadata\":{\"com.formance.spec/state/reverts\":\"0\"},\"reverted\":false,\"preCommitVolumes\":{\"users:1\":{\"USD/2\":{\"input\":100,\"output\":0,\"balance\":100}},\"world\":{\"USD/2\":{\"input\":0,\"output\":100,\"balance\":-100}}},\"postCommitVolumes\":{\"users:1\":{\"USD/2\":{\"input\":100,\"output\":100,\"balance\":0}},\"world\":{\"USD/2\":{\"input\":100,\"output\":100,\"balance\":0}}}}}",
  "HTTP/1.1 201 Created\r\nx-request-id: write-19\r\nidempotency-hit: true\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 15\r\ncontent-length: 564\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"data\":{\"id\":1,\"postings\":[{\"source\":\"users:1\",\"destination\":\"world\",\"amount\":100,\"asset\":\"USD/2\"}],\"timestamp\":\"(masked)\",\"insertedAt\":\"(masked)\",\"updatedAt\":\"(masked)\",\"metadata\":{\"com.formance.spec/state/reverts\":\"0\"},\"reverted\":false,\"preCommitVolumes\":{\"users:1\":{\"USD/2\":{\"input\":100,\"output\":0,\"balance\":100}},\"world\":{\"USD/2\":{\"input\":0,\"output\":100,\"balance\":-100}}},\"postCommitVolumes\":{\"users:1\":{\"USD/2\":{\"input\":100,\"output\":100,\"balance\":0}},\"world\":{\"USD/2\":{\"input\":100,\"output\":100,\"balance\":0}}}}}",
  "HTTP/1.1 400 Bad Request\r\nx-request-id: write-20\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 16\r\ncontent-length: 81\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"errorCode\":\"ALREADY_REVERT\",\"errorMessage\":\"transaction 0 is already reverted\"}",
  "HTTP/1.1 400 Bad Request\r\nx-request-id: write-21\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 16\r\ncontent-length: 88\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"errorCode\":\"VALIDATION\",\"errorMessage\":\"force: expected true or false, got \\\"maybe\\\"\"}",
  "HTTP/1.1 404 Not Found\r\nx-request-id: write-22\r\ncontent-type: application/json; charset=utf-8\r\ntally-applied-index: 17\r\ncontent-length: 74\r\nDate: (masked)\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{\"errorCode\":\"LEDGER_NOT_FOUND\",\"errorMessage\":\"ledger nowhere not found\"}",
]
