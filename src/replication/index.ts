/** Public surface of the replication/recovery engine. See docs/replication.md. */
export type {
  Endpoint,
  ReplicaState,
  SessionKind,
  SessionPhase,
  SessionTicket,
  RejectionReason,
  Outcome,
} from './types.ts'
export type { SessionIdScope } from './types.ts'
export {
  endpointChanged,
  sessionPhaseTransitions,
  isSessionPhaseTransitionAllowed,
  Lsn,
  Epoch,
  Tick,
  SessionId,
  ReplicaId,
} from './types.ts'
export { RecoveryLog, formatRecoveryEvent } from './log.ts'
export type { RecoveryEvent, RecoveryEventKind } from './log.ts'
export {
  classifyHandshake,
  proveRecoverability,
  isRecoverable,
  selectRebuildSource,
  validateRetainedHistory,
} from './recoverability.ts'
export type {
  RetainedHistory,
  HandshakeOutcome,
  RecoverabilityProof,
  RebuildSourceDecision,
  FullBaseReason,
} from './recoverability.ts'
export { CommitTracker, durableCopiesNeeded, durabilityModes, validateDurability } from './commit.ts'
export type { DurabilityMode, CommitAdvance } from './commit.ts'
export { decidePromotion, decideDesperatePromotion, acceptPromotion, ineligibility, isReportFresh } from './promotion.ts'
export type { MemberReport, PromotionInput, PromotionDecision, DesperatePromotionDecision, Ineligibility, PromotionVerdict } from './promotion.ts'
export { lineageSafeLsn, fenceEpoch, decideEpochAdoption, matchLog, learnCommitted, decideBarrier, decidePrimaryTakeover } from './replica.ts'
export type { ReplicaLogView, EpochFence, EpochAdoption, BarrierDecision, LineageReset } from './replica.ts'
export { noFaults, protocolFaultNames } from './faults.ts'
export type { ProtocolFaults } from './faults.ts'
export { BarrierTracker, expiredBarrierTicksKept } from './barriers.ts'
export type { AckVerdict, BarrierTimeout } from './barriers.ts'
export { RecoveryDriver } from './driver.ts'
export { PrimaryProtocol } from './primary.ts'
export { ControlPlane, lineageResetsMax } from './control.ts'
export type { ControlPlaneOptions, Heartbeat, HeartbeatOutcome } from './control.ts'
export type { MembershipVerdict, PrimaryOptions } from './primary.ts'
export type { DriverLimits, DriverOptions, DriverReady, DriverTimer, DriverTimerKind, RecoveryCompleted, RecoveryFailed } from './driver.ts'
export { BudgetTracker, unlimitedBudget, validateBudget } from './budget.ts'
export type { CatchUpBudget, BudgetViolation } from './budget.ts'
export { RebuildProgress } from './rebuild.ts'
export type { RebuildPhase } from './rebuild.ts'
export { Session } from './session.ts'
export { Sender } from './sender.ts'
export { Registry } from './registry.ts'
export type { Assignment, ReplicaAssignment, ReconcileResult, SenderStatus } from './registry.ts'
export { planRecovery, planRebuild, releasePlan, cancelPlan, PinSet } from './planner.ts'
export type { PlannerContext, RecoveryPlan, RebuildPlan, RecoveryPlanKind, PlanResult, PinKind } from './planner.ts'
export { CatchUpExecutor, RebuildExecutor } from './executor.ts'
export type { ExecutorStatus, ExecutorOptions, StepHook } from './executor.ts'
export type {
  PinOwner,
  PinResult,
  RetainedHistorySource,
  RetentionPins,
  StorageAdapter,
  TransferReport,
  TruncateReport,
  BaseTransferReport,
  ConnectReport,
  ReplicaConnector,
  WalStreamer,
  BaseTransfer,
  ReplicaTruncator,
  RecoveryTransport,
  AssignmentSource,
} from './adapters.ts'
export { PrimaryLease, CoordinatorLease, validateLeaseTerms } from './lease.ts'
export type { LeaseTerms, LeaseRenewal } from './lease.ts'
export { AssignmentStore, fencingTokenCurrent, promotionRecord, commitRecord } from './assignment-store.ts'
export type { AssignmentRecord, VersionedAssignment, SwapResult } from './assignment-store.ts'
export { Coordinator } from './coordinator.ts'
export type { AssignmentPort, CoordinatorOptions, CommitAcknowledgement } from './coordinator.ts'
export {
  membersMax,
  roleOf,
  votersOf,
  checkMembership,
  decideAddMember,
  decideRemoveMember,
  learnersCaughtUp,
  promoteLearners,
  carriedCommit,
  membershipAfterPromotion,
  sameMembership,
} from './membership.ts'
export type { Membership, MembershipRole, MembershipChange, LearnerReport } from './membership.ts'
