/**
 * Image rules that need no database: the media type a format implies, what an add request may
 * combine, and which state each operation starts from. Pure, so they are tested exhaustively.
 *
 * States: Downloading (the add chain runs) → Ready; Ready → Deleted (soft, `recover` → Ready;
 * `expunge` or the retention period → gone). A failed add is rolled back: its row is removed, so
 * no image stays in Error (the state exists on the wire for images a later reconciler may find
 * broken on their backup storage).
 */
import type { ImageState } from '../../../db/schema.js';
import { CloudError, type FieldProblem } from '../../../kernel/errors.js';

export type ImageFormat = 'qcow2' | 'raw' | 'iso';
export type MediaType = 'RootVolumeTemplate' | 'DataVolumeTemplate' | 'ISO';

/** ISO images boot CD-ROMs; disk formats are root-volume templates unless the request says data. */
export function defaultMediaType(format: ImageFormat): MediaType {
  return format === 'iso' ? 'ISO' : 'RootVolumeTemplate';
}

/** Problems with an add request beyond what the wire schema checks (all of them at once). */
export function imageRequestProblems(body: { format: ImageFormat; mediaType?: MediaType }): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (body.mediaType !== undefined && (body.format === 'iso') !== (body.mediaType === 'ISO')) {
    problems.push({
      field: 'mediaType',
      problem:
        body.format === 'iso'
          ? 'an iso image is an ISO'
          : `a ${body.format} image is a RootVolumeTemplate or a DataVolumeTemplate, not an ISO`,
    });
  }
  return problems;
}

export type ImageOperation = 'update' | 'delete' | 'recover' | 'expunge';

/** The states each operation may start from (deleting a Deleted image again is a no-op success). */
const ALLOWED: Record<ImageOperation, readonly ImageState[]> = {
  update: ['Downloading', 'Ready', 'Error', 'Deleted'],
  delete: ['Downloading', 'Ready', 'Error', 'Deleted'],
  recover: ['Deleted'],
  expunge: ['Deleted'],
};

/** Refuses an operation the image's state does not allow, naming the state. */
export function assertImageState(uuid: string, state: ImageState, op: ImageOperation): void {
  if (ALLOWED[op].includes(state)) return;
  throw new CloudError(
    'Conflict',
    op === 'recover' || op === 'expunge' ? 'IMAGE_NOT_DELETED' : 'IMAGE_INVALID_STATE',
    `image ${uuid} is ${state}; ${op} needs one of ${ALLOWED[op].join(', ')}${op === 'expunge' ? ' (delete it first)' : ''}`,
    { details: { state, operation: op } },
  );
}
