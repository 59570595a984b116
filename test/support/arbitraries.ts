// Property-test generators shared by test files.
import fc from 'fast-check'
import type { AggregatedVolumes, Metadata, TransactionRecord } from '../../src/domain/index.ts'

/**
 * A transaction record of any shape a row may hold: the required fields,
 * and any of the optional ones (reference, revert date, template, commit
 * volumes), from the caller's generators of each part (each test chooses
 * the strings, dates and amounts its subject is sensitive to).
 */
export function transactionRecords(parts: {
  readonly text: fc.Arbitrary<string>
  readonly date: fc.Arbitrary<string>
  readonly amount: fc.Arbitrary<bigint>
  readonly metadata: fc.Arbitrary<Metadata>
  readonly volumes: fc.Arbitrary<AggregatedVolumes>
}): fc.Arbitrary<TransactionRecord> {
  const { text, date, amount } = parts
  return fc
    .record(
      {
        id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        postings: fc.array(fc.record({ source: text, destination: text, amount, asset: text }), { minLength: 1, maxLength: 4 }),
        timestamp: date,
        insertedAt: date,
        updatedAt: date,
        metadata: parts.metadata,
        reverted: fc.boolean(),
        reference: text,
        revertedAt: date,
        template: text,
        preCommitVolumes: parts.volumes,
        postCommitVolumes: parts.volumes,
      },
      { requiredKeys: ['id', 'postings', 'timestamp', 'insertedAt', 'updatedAt', 'metadata', 'reverted'] },
    )
    .map((fields) => fields as unknown as TransactionRecord)
}
