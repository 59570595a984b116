import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json } from '../../src/domain/index.ts'
import { TallyError, canonicalJson, parseJson } from '../../src/domain/index.ts'
import { checkTemplateBody, fillTemplate, parseTemplateVariables, templateValues } from '../../src/query/index.ts'

const NAMES = ['a', 'user', 'x_1', 'since'] as const

/** A string template as pieces: literal text (no `$`) or a placeholder, braced or not. */
type Piece = { text: string } | { name: (typeof NAMES)[number]; braced: boolean }

const pieceArbitrary: fc.Arbitrary<Piece> = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9:_{}-]{1,6}$/).map((text) => ({ text })),
  fc.record({ name: fc.constantFrom(...NAMES), braced: fc.boolean() }),
)

/** Writes pieces as template text; an unbraced placeholder followed by a name character would read further, so it is braced then. */
function written(pieces: readonly Piece[]): string {
  let out = ''
  pieces.forEach((piece, i) => {
    if ('text' in piece) {
      out += piece.text
      return
    }
    const next = pieces[i + 1]
    const glued = next !== undefined && 'text' in next && /^[a-z0-9_]/.test(next.text)
    out += piece.braced || glued ? `\${${piece.name}}` : `$${piece.name}`
  })
  return out
}

/** The reference: each placeholder replaced by its value's text, literals kept. */
function expected(pieces: readonly Piece[], values: ReadonlyMap<string, string>): string {
  return pieces.map((piece) => ('text' in piece ? piece.text : (values.get(piece.name) as string))).join('')
}

const declared = parseTemplateVariables(parseJson(JSON.stringify(Object.fromEntries(NAMES.map((name) => [name, 'string'])))), 'vars')

test('query templates: a string value is filled as the reference fills it, whatever its placeholders (property)', () => {
  fc.assert(
    fc.property(fc.array(pieceArbitrary, { minLength: 1, maxLength: 8 }), fc.array(fc.stringMatching(/^[a-zA-Z0-9$:_-]{0,5}$/), { minLength: NAMES.length, maxLength: NAMES.length }), (pieces, texts) => {
      const template = written(pieces)
      const body = parseJson(JSON.stringify({ $match: { reference: template } })) as Json
      checkTemplateBody('transactions', body, declared, 'body')
      const given = Object.fromEntries(NAMES.map((name, i) => [name, texts[i] as string]))
      const values = templateValues(declared, parseJson(JSON.stringify(given)))
      const filled = fillTemplate('transactions', body, declared, values) as { $match: { reference: string } }
      assert.equal(filled.$match.reference, expected(pieces, new Map(Object.entries(given))), template)
    }),
  )
})

test('query templates: a `$` that starts no placeholder is refused at insertion, wherever it is (property)', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z:]{0,4}$/), fc.constantFrom('$', '$1', '$A', '${', '${a', '${1}', '$-'), fc.stringMatching(/^[-:A-Z]{0,4}$/), (before, broken, after) => {
      const body = parseJson(JSON.stringify({ $match: { reference: `${before}${broken}${after}` } })) as Json
      assert.throws(() => checkTemplateBody('transactions', body, declared, 'body'), (error: unknown) => error instanceof TallyError && error.code === 'VALIDATION')
    }),
  )
})

test('query templates: typed fields take one whole placeholder of their type; keys are never filled', () => {
  const vars = parseTemplateVariables(parseJson('{"n": "int", "on": {"type": "boolean", "default": true}, "d": "date", "k": "string"}'), 'vars')
  const body = parseJson('{"$and": [{"$gte": {"id": "$n"}}, {"$match": {"reverted": "${on}"}}, {"$lt": {"timestamp": "${d}"}}, {"$match": {"metadata[$k]": "v-$k"}}]}') as Json
  checkTemplateBody('transactions', body, vars, 'body')
  const values = templateValues(vars, parseJson('{"n": "12", "d": "2024-01-01T00:00:00Z", "k": "z"}'))
  assert.equal(canonicalJson(fillTemplate('transactions', body, vars, values)), canonicalJson(parseJson('{"$and": [{"$gte": {"id": 12}}, {"$match": {"reverted": true}}, {"$lt": {"timestamp": "2024-01-01T00:00:00Z"}}, {"$match": {"metadata[$k]": "v-z"}}]}')))
  assert.throws(() => checkTemplateBody('transactions', parseJson('{"$gte": {"id": "${on}"}}') as Json, vars, 'body'), /variable on is a boolean, this field needs a int/)
  assert.throws(() => checkTemplateBody('transactions', parseJson('{"$gte": {"id": "x${n}"}}') as Json, vars, 'body'), /invalid filter/)
})
