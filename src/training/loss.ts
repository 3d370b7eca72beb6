/**
 * Masked next-token cross-entropy for right-padded batches.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Mean cross-entropy of predicting `tokens[b][i+1]` from position `i`, over every position with
 * `i + 1 < lengths[b]` (padding never counts). Uses a one-hot product instead of `gather`
 * because gather has no gradient on the wasm backend.
 * @param logits [batch, pos, vocab]
 * @param tokens [batch, pos] int32, right-padded
 * @param lengths true length of each row (>= 2)
 * @returns scalar loss (nats per predicted token)
 */
export function nextTokenLoss(logits: tf.Tensor3D, tokens: tf.Tensor2D, lengths: readonly number[]): tf.Scalar {
  const [batch, pos, vocab] = logits.shape;
  if (tokens.shape[0] !== batch || tokens.shape[1] !== pos) {
    throw new Error(`nextTokenLoss: tokens [${tokens.shape.join(', ')}] do not match logits [${logits.shape.join(', ')}]`);
  }
  if (lengths.length !== batch) throw new Error(`nextTokenLoss: ${lengths.length} lengths for a batch of ${batch}`);
  const mask = new Float32Array(batch * (pos - 1));
  let count = 0;
  lengths.forEach((len, b) => {
    if (!Number.isInteger(len) || len < 2 || len > pos) throw new Error(`nextTokenLoss: length ${len} of row ${b} is outside [2, ${pos}]`);
    for (let i = 0; i + 1 < len; i++) mask[b * (pos - 1) + i] = 1;
    count += len - 1;
  });
  return tf.tidy(() => {
    const pred = tf.slice(logits, [0, 0, 0], [batch, pos - 1, vocab]); // [b, p-1, V]
    const target = tf.slice(tokens, [0, 1], [batch, pos - 1]); // [b, p-1]
    const logp = tf.logSoftmax(pred); // [b, p-1, V]
    const picked = tf.sum(tf.mul(logp, tf.oneHot(target, vocab)), -1); // [b, p-1]
    const m = tf.tensor2d(mask, [batch, pos - 1]);
    return tf.div(tf.neg(tf.sum(tf.mul(picked, m))), count) as tf.Scalar;
  });
}
