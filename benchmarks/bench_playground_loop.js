// A plain JavaScript training loop for the playground benchmark (not shipped with the package).
// The same network as handgrad's: Linear -> tanh -> ... -> Linear -> sigmoid, BCE averaged over the
// batch, plain SGD, batches taken in order as the playground does. Samples are processed one by one
// (as TensorFlow Playground's nn.ts does), with Float64Array weights.
"use strict";
function makeNet(params) {
  return params.map((p) => {
    const out = p.W.length, inp = p.W[0].length;
    return { out, inp, W: Float64Array.from(p.W.flat()), b: Float64Array.from(p.b),
      dW: new Float64Array(out * inp), db: new Float64Array(out), z: new Float64Array(out),
      a: new Float64Array(out), d: new Float64Array(out) };
  });
}
function trainUpdate(net, X, Y, start, bs, lr) {
  const L = net.length, n = Math.min(bs, X.length - start);
  for (const l of net) { l.dW.fill(0); l.db.fill(0); }
  for (let s = start; s < start + n; s++) {
    let input = X[s];
    for (let k = 0; k < L; k++) {  // forward
      const l = net[k], last = k === L - 1;
      for (let i = 0; i < l.out; i++) {
        let z = l.b[i];
        for (let j = 0; j < l.inp; j++) z += l.W[i * l.inp + j] * input[j];
        l.z[i] = z;
        l.a[i] = last ? 1 / (1 + Math.exp(-z)) : Math.tanh(z);
      }
      input = l.a;
    }
    const out = net[L - 1];
    for (let i = 0; i < out.out; i++) out.d[i] = (out.a[i] - Y[s]) / n;  // sigmoid + BCE: dJ/dz = (ŷ - y)/N
    for (let k = L - 1; k >= 0; k--) {  // backward
      const l = net[k], prev = k > 0 ? net[k - 1].a : X[s];
      for (let i = 0; i < l.out; i++) {
        l.db[i] += l.d[i];
        for (let j = 0; j < l.inp; j++) l.dW[i * l.inp + j] += l.d[i] * prev[j];
      }
      if (k > 0) {
        const p = net[k - 1];
        for (let j = 0; j < l.inp; j++) {
          let g = 0;
          for (let i = 0; i < l.out; i++) g += l.d[i] * l.W[i * l.inp + j];
          p.d[j] = g * (1 - p.a[j] * p.a[j]);  // tanh' = 1 - tanh²
        }
      }
    }
  }
  for (const l of net) {  // update
    for (let i = 0; i < l.W.length; i++) l.W[i] -= lr * l.dW[i];
    for (let i = 0; i < l.b.length; i++) l.b[i] -= lr * l.db[i];
  }
}
// Run `updates` updates (or for `seconds`), batches in order; returns {updates, seconds, params}.
window.benchLoop = (params, X, Y, bs, lr, updates, seconds) => {
  const net = makeNet(params);
  let pos = 0, done = 0;
  const t0 = performance.now(), stop = t0 + 1000 * (seconds || 1e9);
  while (done < (updates || Infinity)) {
    if (pos >= X.length) pos = 0;
    trainUpdate(net, X, Y, pos, bs, lr);
    pos += bs; done++;
    if ((done & 255) === 0 && performance.now() > stop) break;
  }
  const secs = (performance.now() - t0) / 1000;
  return { updates: done, seconds: secs, params: net.map((l) => ({ W: Array.from(l.W), b: Array.from(l.b) })) };
};
