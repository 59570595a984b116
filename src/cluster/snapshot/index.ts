/** Trusted snapshots and their base transfer (docs/cluster.md, "Snapshots and rebuild"). */
export { encodeManifest, decodeManifest, assertManifest, manifestBytes, snapshotFormatVersion, manifestBytesMax } from './manifest.ts'
export type { SnapshotManifest, SnapshotFile, ManifestDecoding } from './manifest.ts'
export { SnapshotCatalog, verifySnapshotDirectory, readSnapshotRows, isSnapshotRow, snapshotDirectoryName, snapshotFileBytesMaxDefault, snapshotsRetainedDefault } from './image.ts'
export type { SnapshotCatalogOptions, SnapshotVerification } from './image.ts'
export { receiveSnapshot, chunkOf, SnapshotTransferError, chunkBytesDefault, inFlightBytesMaxDefault } from './transfer.ts'
export type { SnapshotChunk, SnapshotChunkRequest, TransferProgress, ReceiveSnapshotOptions, SnapshotTransferFailure } from './transfer.ts'
export { installSnapshot, recoverInstall, fileSystemInstallIo } from './install.ts'
export type { InstallIo, InstallSnapshotOptions } from './install.ts'
