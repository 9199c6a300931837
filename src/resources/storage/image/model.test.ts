import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImageState } from '../../../db/schema.js';
import { CloudError } from '../../../kernel/errors.js';
import { assertImageState, defaultMediaType, type ImageOperation, imageRequestProblems } from './model.js';

describe('image rules', () => {
  test('the media type a format implies', () => {
    assert.equal(defaultMediaType('iso'), 'ISO');
    assert.equal(defaultMediaType('qcow2'), 'RootVolumeTemplate');
    assert.equal(defaultMediaType('raw'), 'RootVolumeTemplate');
  });

  test('format and media type must agree: ISO exactly for iso', () => {
    let combinations = 0;
    for (const format of ['qcow2', 'raw', 'iso'] as const) {
      for (const mediaType of ['RootVolumeTemplate', 'DataVolumeTemplate', 'ISO'] as const) {
        const fine = (format === 'iso') === (mediaType === 'ISO');
        combinations++;
        const problems = imageRequestProblems({ format, mediaType });
        assert.equal(problems.length === 0, fine, `${format}/${mediaType}`);
        if (!fine) assert.equal(problems[0]!.field, 'mediaType');
      }
      assert.deepEqual(imageRequestProblems({ format }), [], `${format} without a media type`);
    }
    assert.equal(combinations, 9);
  });

  test('every operation × state: allowed or refused naming the state', () => {
    const states: ImageState[] = ['Downloading', 'Ready', 'Error', 'Deleted'];
    const allowed: Record<ImageOperation, ImageState[]> = {
      update: states,
      delete: states,
      recover: ['Deleted'],
      expunge: ['Deleted'],
    };
    for (const op of Object.keys(allowed) as ImageOperation[]) {
      for (const state of states) {
        if (allowed[op].includes(state)) {
          assert.doesNotThrow(() => assertImageState('i', state, op), `${op} from ${state}`);
          continue;
        }
        assert.throws(
          () => assertImageState('i', state, op),
          (e) =>
            e instanceof CloudError &&
            e.code === 'IMAGE_NOT_DELETED' &&
            e.reason === 'Conflict' &&
            e.details?.state === state &&
            e.message.includes(state),
          `${op} from ${state}`,
        );
      }
    }
  });
});
