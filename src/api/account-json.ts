import { ATTRIBUTE_ROW_LAYOUT, JsonBytes, asciiText, decodeRowValue, packedObjectFields, writeMoved, writePackedJson } from '../domain/index.ts'
import type { AsciiText } from '../domain/index.ts'

/**
 * `{"data": account}` printed straight from the account's stored rows: the
 * text `stringifyJson` gives for the view `Views.account` builds (address,
 * metadata, insertionDate, updatedAt, firstUsage, then volumes with
 * `expand=volumes`), without decoding the account row into a record, nor
 * building the view, the volumes map and its JSON object. The account row's
 * fields are copied from its packed bytes (`writePackedJson`: exactly what
 * printing the decoded value gives, integer-like metadata keys included);
 * the volume rows are decoded, each two integers, for the balance.
 *
 * A read that misses the kept answers prints every answer this way
 * (docs/reads.md, "Answers kept between writes"); `test/api/account-json.test.ts`
 * holds it to the view's text.
 */
export function printAccountAnswer(accountRow: Buffer, volumeRows: readonly (readonly [asset: string, row: Buffer])[] | undefined): string {
  const out = writer
  const from = out.length
  try {
    out.ascii(text.open)
    const fields = packedObjectFields(accountRow, ATTRIBUTE_ROW_LAYOUT)
    let first = true
    for (const [name, quoted] of accountFields) {
      const offset = fields.get(name)
      // The view's field is undefined when the row has none: printing skips it.
      if (offset === undefined) continue
      if (!first) out.byte(comma)
      out.ascii(quoted)
      writePackedJson(accountRow, { offset }, out)
      first = false
    }
    if (volumeRows !== undefined) {
      if (!first) out.byte(comma)
      out.ascii(text.volumes)
      // In key order, which is the order `volumesJson` prints (assets sorted as strings): an asset is
      // ASCII, so its bytes sort as its code units, and it never looks like an array index.
      for (let at = 0; at < volumeRows.length; at++) {
        const [asset, row] = volumeRows[at] as readonly [string, Buffer]
        const { input, output } = decodeRowValue('v', row)
        if (at > 0) out.byte(comma)
        writeMoved(out, asset, input, output, input - output)
      }
      out.byte(closeBrace)
    }
    out.ascii(text.close)
    return out.takeStringFrom(from)
  } finally {
    out.discardFrom(from)
  }
}

/** Account answers are printed within one synchronous call, through this writer. */
const writer = new JsonBytes()

const comma = 0x2c
const closeBrace = 0x7d

const text = {
  open: asciiText('{"data":{'),
  volumes: asciiText('"volumes":{'),
  close: asciiText('}}'),
} as const

/** The view's fields in its order, each with its printed name. */
const accountFields: readonly (readonly [string, AsciiText])[] = ['address', 'metadata', 'insertionDate', 'updatedAt', 'firstUsage'].map(
  (name) => [name, asciiText(`${JSON.stringify(name)}:`)] as const,
)
