import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { request } from 'node:https'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseServeArgs } from '../../src/cli/serve-command.ts'
import { spawnTally } from '../support/server-process.ts'
import { selfSignedCertificate } from '../support/self-signed.ts'
import { tempDirectory } from '../support/temp.ts'

const TALLY = fileURLToPath(new URL('../../bin/tally.mjs', import.meta.url))

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

function tally(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env, TALLY_TARGET: '', TALLY_DATA: '', TALLY_TOKEN: '', TALLY_CLIENT_ID: '', TALLY_CLIENT_SECRET: '', ...env }
  return new Promise((resolve) => {
    execFile(process.execPath, [TALLY, ...args], { env: base, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 99, stdout, stderr })
    })
  })
}

function httpsCall(url: string, ca: Buffer, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, ca }, (incoming) => {
      let body = ''
      incoming.setEncoding('utf8')
      incoming.on('data', (chunk: string) => (body += chunk))
      incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body }))
    })
    outgoing.on('error', reject)
    outgoing.end(options.body)
  })
}

test('serve: auth on an address other than loopback without TLS is refused; with TLS, or on loopback, it is accepted', () => {
  assert.throws(() => parseServeArgs(['--listen', '0.0.0.0:3068', '--auth-clients', 'clients.json'], {}), /needs TLS/)
  assert.throws(() => parseServeArgs(['--listen', '[2001:db8::1]:3068'], { TALLY_AUTH_ISSUER: 'https://issuer.example' }), /needs TLS/)
  assert.throws(() => parseServeArgs(['--tls-cert', 'cert.pem'], {}), /go together/)
  assert.throws(() => parseServeArgs(['--log-level', 'loud'], {}), /--log-level/)
  assert.throws(() => parseServeArgs(['--auth-token-seconds', '600'], {}), /need --auth-clients or --auth-issuer/)
  assert.throws(() => parseServeArgs(['--auth-clients', 'c.json', '--auth-token-seconds', '100000'], {}), /at most 86400/)
  assert.ok(parseServeArgs(['--listen', '0.0.0.0:3068', '--auth-clients', 'clients.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'], {}) !== 'help')
  for (const listen of ['127.0.0.1:3068', '[::1]:3068', 'localhost:3068', '127.1.2.3:1']) {
    const settings = parseServeArgs(['--listen', listen, '--auth-clients', 'clients.json'], {})
    assert.ok(settings !== 'help' && settings.auth !== undefined, listen)
  }
})

test('serve over TLS with --auth-clients: probes open, API closed without a token; tally auth-client makes a client; tally export authenticates from the environment; no secret in the logs', async () => {
  const temp = tempDirectory('tally-serve-security-')
  const { cert, key } = selfSignedCertificate()
  const certFile = path.join(temp.directory, 'cert.pem')
  const keyFile = path.join(temp.directory, 'key.pem')
  writeFileSync(certFile, cert)
  writeFileSync(keyFile, key)
  const made = await tally(['auth-client', '--id', 'ops', '--scopes', 'ledger:read,ledger:write,ledger:admin'])
  assert.equal(made.code, 0, made.stderr)
  const secret = /: (\S+)\n$/.exec(made.stderr)?.[1]
  assert.ok(secret !== undefined && secret.length >= 32, made.stderr)
  assert.ok(!made.stdout.includes(secret), 'the entry holds a hash, never the secret')
  const clientsFile = path.join(temp.directory, 'clients.json')
  writeFileSync(clientsFile, JSON.stringify({ clients: [JSON.parse(made.stdout)] }))
  const server = await spawnTally({ dataDirectory: path.join(temp.directory, 'data'), args: ['--tls-cert', certFile, '--tls-key', keyFile, '--auth-clients', clientsFile, '--log-level', 'debug'] })
  try {
    const base = server.baseUrl.replace(/^http:/, 'https:')
    assert.equal((await httpsCall(`${base}/_/healthz`, cert)).status, 200)
    assert.equal((await httpsCall(`${base}/v2`, cert)).status, 401)
    const granted = await httpsCall(`${base}/api/auth/oauth/token`, cert, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'ops', client_secret: secret }).toString(),
    })
    assert.equal(granted.status, 200, granted.body)
    const token = (JSON.parse(granted.body) as { access_token: string }).access_token
    const created = await httpsCall(`${base}/v2/main`, cert, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' })
    assert.equal(created.status, 204, created.body)
    const env = { NODE_EXTRA_CA_CERTS: certFile, TALLY_CLIENT_ID: 'ops', TALLY_CLIENT_SECRET: secret }
    const exported = await tally(['export', '--target', base, '--ledger', 'main'], env)
    assert.equal(exported.code, 0, exported.stderr)
    const refused = await tally(['export', '--target', base, '--ledger', 'main'], { NODE_EXTRA_CA_CERTS: certFile })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /answered 401/)
    const checked = await tally(['check', '--target', base], env)
    assert.equal(checked.code, 0, checked.stderr)
    server.child.kill('SIGTERM')
    await server.exited
    const logs = server.stderr()
    assert.match(logs, /"msg":"token issued"/)
    assert.ok(!logs.includes(secret), 'the client secret is not logged')
    assert.ok(!logs.includes(token), 'the token is not logged')
  } finally {
    server.child.kill('SIGKILL')
    await server.exited
    temp.remove()
  }
})
