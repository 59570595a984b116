import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'

/**
 * A self-signed Ed25519 X.509 certificate for 127.0.0.1 and localhost, made
 * with a few lines of DER (node:crypto signs but does not build
 * certificates, and tests must not need the openssl binary).
 */
export function selfSignedCertificate(commonName = 'tally-test'): { readonly cert: Buffer; readonly key: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const ed25519 = sequence(oid([1, 3, 101, 112]))
  const name = sequence(set(sequence(oid([2, 5, 4, 3]), tlv(0x0c, Buffer.from(commonName)))))
  const now = Date.now()
  const validity = sequence(utcTime(new Date(now - 60_000)), utcTime(new Date(now + 24 * 3600_000)))
  const subjectAltName = sequence(oid([2, 5, 29, 17]), tlv(0x04, sequence(tlv(0x87, Buffer.from([127, 0, 0, 1])), tlv(0x82, Buffer.from('localhost')))))
  const serial = randomBytes(8)
  // DER INTEGER: positive (top bit clear) and minimal (a leading zero byte before a byte under 0x80 is
  // illegal padding, which OpenSSL refuses: ~1 run in 512 failed with ERR_OSSL_ASN1_ILLEGAL_PADDING).
  serial[0] = 0x40 | ((serial[0] as number) & 0x3f)
  const tbs = sequence(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    ed25519,
    name,
    validity,
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, sequence(subjectAltName)),
  )
  const signature = sign(null, tbs, privateKey)
  const der = sequence(tbs, ed25519, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])))
  const cert = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`
  return { cert: Buffer.from(cert), key: Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string) }
}

function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length
  if (length < 0x80) return Buffer.concat([Buffer.from([tag, length]), content])
  const bytes: number[] = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256)
  return Buffer.concat([Buffer.from([tag, 0x80 | bytes.length, ...bytes]), content])
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items))
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items))

function oid(arcs: readonly number[]): Buffer {
  const bytes = [40 * (arcs[0] as number) + (arcs[1] as number)]
  for (const arc of arcs.slice(2)) {
    const groups: number[] = []
    for (let rest = arc; ; rest = Math.floor(rest / 128)) {
      groups.unshift((rest % 128) | (groups.length === 0 ? 0 : 0x80))
      if (rest < 128) break
    }
    bytes.push(...groups)
  }
  return tlv(0x06, Buffer.from(bytes))
}

function utcTime(date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'
  return tlv(0x17, Buffer.from(text))
}
