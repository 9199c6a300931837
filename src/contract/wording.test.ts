import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noun, withArticle } from './wording.js';

test('kinds read as English, articles by sound', () => {
  assert.equal(withArticle('account'), 'an account');
  assert.equal(withArticle('eip'), 'an EIP');
  assert.equal(withArticle('vip'), 'a VIP');
  assert.equal(withArticle('vm'), 'a VM');
  assert.equal(withArticle('vm-nic'), 'a VM NIC');
  assert.equal(withArticle('l3-network'), 'an L3 network');
  assert.equal(withArticle('image'), 'an image');
  assert.equal(withArticle('ip-range'), 'an IP range');
  assert.equal(withArticle('user'), 'a user');
  assert.equal(withArticle('zone'), 'a zone');
  assert.equal(withArticle('instance-offering'), 'an instance offering');
  assert.equal(noun('ip-addresses'), 'IP addresses');
  assert.equal(noun('vms'), 'VMs');
});
