import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { NetworkError, createLeanHttpTransport, decodeChunked, parseResponseHead } from '../../src/bench/index.ts'
import { keepAliveReuseMs } from '../../src/bench/lean-http.ts'

/** A raw TCP server answering each request with the bytes `answer` returns, written in `pieces` writes. */
async function rawServer(answer: (request: string, index: number) => string | undefined, pieces = 1): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let pending = ''
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1')
      for (;;) {
        const headEnd = pending.indexOf('\r\n\r\n')
        if (headEnd === -1) return
        const length = Number(/content-length: ([0-9]+)/i.exec(pending.slice(0, headEnd))?.[1] ?? '0')
        if (pending.length < headEnd + 4 + length) return
        const request = pending.slice(0, headEnd + 4 + length)
        pending = pending.slice(request.length)
        requests.push(request)
        const reply = answer(request, requests.length - 1)
        if (reply === undefined) continue // never answer: a hung server
        const size = Math.ceil(reply.length / pieces)
        for (let at = 0; at < reply.length; at += size) socket.write(reply.slice(at, at + size), 'latin1')
        if (/connection: close/i.test(reply)) socket.end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/prefix/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

test('answer heads: status, length, chunked and connection handling', () => {
  assert.deepEqual(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5'), { status: 200, contentLength: 12, chunked: false, closeAfter: false, keepAliveMs: 5000 })
  assert.deepEqual(parseResponseHead('HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\nconnection: close'), { status: 400, contentLength: undefined, chunked: true, closeAfter: true, keepAliveMs: undefined })
  assert.equal(parseResponseHead('HTTP/1.1 200 OK\r\nKeep-Alive: max=100, timeout=2').keepAliveMs, 2000)
  assert.equal(parseResponseHead('HTTP/1.1 200 OK\r\nKeep-Alive: xtimeout=2').keepAliveMs, undefined)
  assert.equal(parseResponseHead('HTTP/1.0 204 No Content').closeAfter, true)
  assert.throws(() => parseResponseHead('SSH-2.0-OpenSSH'), NetworkError)
  assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: -1'), NetworkError)
})

test('chunked bodies decode only once complete, trailers skipped', () => {
  const whole = Buffer.from('5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n')
  assert.deepEqual(decodeChunked(whole), { body: Buffer.from('hello, world'), consumed: whole.length })
  for (let cut = 0; cut < whole.length; cut++) assert.equal(decodeChunked(whole.subarray(0, cut)), undefined, `cut at ${cut}`)
  assert.throws(() => decodeChunked(Buffer.from('zz\r\n')), NetworkError)
  assert.throws(() => decodeChunked(Buffer.from('2\r\nabc\r\n0\r\n\r\n')), /longer than its size/)
})

test('lean client: pre-encoded requests, answers split across writes, keep-alive reuse, chunked and close', async () => {
  const server = await rawServer((request, index) => {
    if (index % 3 === 0) return 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"data":[]}'
    if (index % 3 === 1) return 'HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"er\r\n1b\r\nrorCode":"INSUFFICIENT_FUND\r\n2\r\n"}\r\n0\r\n\r\n'
    return 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n'
  }, 5)
  const transport = createLeanHttpTransport({ target: new URL(server.url), socketsMax: 1, requestTimeoutMs: 5000 })
  try {
    for (let round = 0; round < 3; round++) {
      const ok = await transport.send({ method: 'POST', path: '/v2/bench/transactions', body: '{"é":1}' })
      assert.deepEqual([ok.status, ok.body], [200, '{"data":[]}'])
      const refused = await transport.send({ method: 'POST', path: '/v2/bench/transactions', body: '{}' })
      assert.deepEqual([refused.status, refused.body], [400, '{"errorCode":"INSUFFICIENT_FUND"}'])
      const empty = await transport.send({ method: 'GET', path: '/v2/bench', body: undefined })
      assert.deepEqual([empty.status, empty.body], [204, ''])
    }
  } finally {
    transport.close()
    await server.close()
  }
  assert.equal(server.requests.length, 9)
  assert.match(server.requests[0] ?? '', /^POST \/prefix\/v2\/bench\/transactions HTTP\/1\.1\r\nHost: 127\.0\.0\.1:[0-9]+\r\n/)
  assert.match(server.requests[0] ?? '', /Content-Length: 8\r\n\r\n\{"..":1\}$/, 'length in bytes, not characters')
  assert.match(server.requests[2] ?? '', /^GET \/prefix\/v2\/bench HTTP\/1\.1\r\n[^]*\r\n\r\n$/)
})

test('lean client: a hung server times out, a refused connection and a reset are network errors, queued requests still run', async () => {
  const server = await rawServer((_request, index) => (index === 0 ? undefined : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'))
  const transport = createLeanHttpTransport({ target: new URL(server.url), socketsMax: 1, requestTimeoutMs: 200 })
  try {
    const [hung, queued] = await Promise.allSettled([
      transport.send({ method: 'POST', path: '/a', body: '{}' }),
      transport.send({ method: 'POST', path: '/b', body: '{}' }),
    ])
    assert.equal(hung.status, 'rejected')
    assert.ok(hung.status === 'rejected' && hung.reason instanceof NetworkError && hung.reason.code === 'TIMEOUT')
    assert.ok(queued.status === 'fulfilled' && queued.value.status === 200, 'the queued request runs on a fresh connection')
  } finally {
    transport.close()
    await server.close()
  }
  const gone = createLeanHttpTransport({ target: new URL(server.url), socketsMax: 2, requestTimeoutMs: 5000 })
  await assert.rejects(gone.send({ method: 'GET', path: '/', body: undefined }), (error: unknown) => error instanceof NetworkError && error.code === 'ECONNREFUSED')
  gone.close()
  await assert.rejects(gone.send({ method: 'GET', path: '/', body: undefined }), (error: unknown) => error instanceof NetworkError && error.code === 'CLOSED')

  const untilClose = await rawServer(() => 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"framed":"by close"}')
  const closing = createLeanHttpTransport({ target: new URL(untilClose.url), socketsMax: 1, requestTimeoutMs: 5000 })
  try {
    for (let round = 0; round < 2; round++) {
      const answer = await closing.send({ method: 'GET', path: '/', body: undefined })
      assert.deepEqual([answer.status, answer.body], [200, '{"framed":"by close"}'], 'a body without length ends with the connection')
    }
  } finally {
    closing.close()
    await untilClose.close()
  }

  const resetting = await rawServer(() => 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{"short"')
  const reset = createLeanHttpTransport({ target: new URL(resetting.url), socketsMax: 1, requestTimeoutMs: 5000 })
  try {
    await assert.rejects(reset.send({ method: 'GET', path: '/', body: undefined }), (error: unknown) => error instanceof NetworkError && error.code === 'ECONNRESET')
  } finally {
    reset.close()
    await resetting.close()
  }
})

/**
 * A server that closes a kept-alive connection after its keep-alive timeout:
 * modelled without waiting, by resetting any connection that receives a
 * request after `staleAfter` answers were given on it, as if its idle timer
 * had fired while that request was on the wire. Every answer announces
 * `Keep-Alive: timeout=5`.
 */
async function closingServer(): Promise<{ url: string; connections: number[]; close(): Promise<void> }> {
  const connections: number[] = [] // answers given, per connection
  const sockets = new Set<net.Socket>()
  let reuseResets = true
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    const index = connections.push(0) - 1
    let pending = ''
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1')
      const headEnd = pending.indexOf('\r\n\r\n')
      if (headEnd === -1) return
      pending = ''
      if (reuseResets && (connections[index] ?? 0) > 0) {
        socket.resetAndDestroy()
        return
      }
      connections[index] = (connections[index] ?? 0) + 1
      socket.write('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n{}', 'latin1')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/`,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        reuseResets = false
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

test('keep-alive reuse window: a second before the announced timeout, half of it when shorter, unbounded when unannounced', () => {
  assert.equal(keepAliveReuseMs(5000), 4000)
  assert.equal(keepAliveReuseMs(1000), 500)
  assert.equal(keepAliveReuseMs(undefined), Number.POSITIVE_INFINITY)
})

test('lean client: a connection idle past the server\'s keep-alive timeout is not reused (no reset from a request crossing the server\'s close)', async () => {
  const server = await closingServer()
  let clock = 0
  const transport = createLeanHttpTransport({ target: new URL(server.url), socketsMax: 2, requestTimeoutMs: 5000, now: () => clock })
  try {
    const first = await transport.send({ method: 'POST', path: '/v2/bench/transactions', body: '{}' })
    assert.equal(first.status, 200)
    // Idle for 4.5 s of the server's 5: a request now could cross the server's close. It goes on a fresh connection.
    clock += 4500
    const second = await transport.send({ method: 'POST', path: '/v2/bench/transactions', body: '{}' })
    assert.equal(second.status, 200)
    assert.deepEqual(server.connections, [1, 1], 'the stale connection was closed, the request sent on a new one')
  } finally {
    transport.close()
    await server.close()
  }
})

test('lean client: a connection answered moments ago is reused', async () => {
  const server = await closingServer()
  let clock = 0
  const transport = createLeanHttpTransport({ target: new URL(server.url), socketsMax: 2, requestTimeoutMs: 5000, now: () => clock })
  try {
    assert.equal((await transport.send({ method: 'GET', path: '/', body: undefined })).status, 200)
    clock += 3999
    // The server of this test resets any reuse: the request fails, proof that the connection was reused.
    await assert.rejects(transport.send({ method: 'GET', path: '/', body: undefined }), (error: unknown) => error instanceof NetworkError && error.code === 'ECONNRESET')
    assert.deepEqual(server.connections, [1])
  } finally {
    transport.close()
    await server.close()
  }
})
