import { test } from 'node:test'
import assert from 'node:assert/strict'
import { assertError, assertStatus, balanceOf, createLedger, openTestApi, postTransaction } from '../support/api.ts'
import type { TestApi } from '../support/api.ts'

/** Edges of what a request may say: amounts, balances at the 2^256 bound, dates, lengths, cursors. */

async function fresh(): Promise<TestApi> {
  const api = await openTestApi()
  await createLedger(api, 'main')
  return api
}

function bodyWithAmount(amountText: string): string {
  return `{"postings":[{"source":"world","destination":"users:1","amount":${amountText},"asset":"USD"}]}`
}

test('amounts are JSON integers: strings, decimals and exponents are 400 with a message saying why; nothing applied', async () => {
  const api = await fresh()
  try {
    for (const text of ['"100"', '"007"', '"0"', '"1"']) {
      assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount(text)), 400, 'VALIDATION', /postings\[0\]\.amount: .*a string.*JSON integer/)
    }
    for (const text of ['1e3', '100.0', '1E2', '1.0e2']) {
      assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount(text)), 400, 'VALIDATION', /postings\[0\]\.amount: .*decimal point or an exponent/)
    }
    assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount('1.5')), 400, 'VALIDATION', /postings\[0\]\.amount: 1\.5 is not a whole number/)
    assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount('-1')), 400, 'VALIDATION', /postings\[0\]\.amount: .*negative/)
    assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount(String(1n << 256n))), 400, 'VALIDATION', /2\^256 - 1/)
    assertStatus(await api.request('POST', '/v2/main/transactions', bodyWithAmount(String((1n << 256n) - 1n))), 200)
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD'), (1n << 256n) - 1n)
  } finally {
    await api.close()
  }
})

test('volumes never pass 2^256 - 1: the posting that would is refused (business 400), nothing of its transaction applied', async () => {
  const api = await fresh()
  const top = (1n << 256n) - 1n
  try {
    // world's output reaches the bound exactly, then one more unit is refused.
    await postTransaction(api, 'main', [{ source: 'world', destination: 'a', amount: top, asset: 'USD' }])
    const refused = await api.request(
      'POST',
      '/v2/main/transactions',
      `{"postings":[{"source":"world","destination":"c","amount":0,"asset":"USD"},{"source":"world","destination":"b","amount":1,"asset":"USD"}]}`,
    )
    assertError(refused, 400, 'VALIDATION', /world.*output.*2\^256 - 1/)
    assert.equal(await balanceOf(api, 'main', 'b', 'USD'), 0n)
    // `a` holds the whole bound as input: sending it away and back would push its input past it.
    await postTransaction(api, 'main', [{ source: 'a', destination: 'e', amount: 1n, asset: 'USD' }])
    const back = await api.request('POST', '/v2/main/transactions', `{"postings":[{"source":"e","destination":"a","amount":1,"asset":"USD"}]}`)
    assertError(back, 400, 'VALIDATION', /a.*input.*2\^256 - 1/)
    assert.equal(await balanceOf(api, 'main', 'e', 'USD'), 1n, 'the refused posting moved nothing')
  } finally {
    await api.close()
  }
})
