// The image mode's shared state: its elements, the drawing context and what the page knows of the session.
// The canvas holds the image at its own pixel size and CSS scales it to the screen.

export const PALETTE = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [0, 128, 128], [170, 110, 40]];

const $ = (id) => document.getElementById(id);
export const ui = {
  status: $('status'), canvas: $('canvas'), stage: $('stage'), placeholder: $('placeholder'),
  file: $('image-input'), sample: $('sample'), urlForm: $('url-form'), url: $('url-input'),
  mode: $('mode'), newObject: $('new-object'), undo: $('undo'), clear: $('clear'), opacity: $('opacity'),
  textForm: $('text-form'), text: $('text-prompt'), confidence: $('confidence'),
  confidenceValue: $('confidence-value'), objects: $('objects'), points: $('points'),
  downloadPng: $('download-png'), downloadRle: $('download-rle'),
};
export const ctx = ui.canvas.getContext('2d');

export const state = {
  ws: null, image: null, width: 0, height: 0, imageId: null, source: null, reloading: false, imageKey: null,
  objects: new Map(), current: 1, text: null, negative: false, drag: null,
};

export function setStatus(text, kind = '') {
  ui.status.textContent = text;
  ui.status.className = `status ${kind}`;
}

export const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
export const fmt = (ms) => (ms < 10 ? ms.toFixed(1) : Math.round(ms).toString());

export function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('image could not be displayed'));
    img.src = src;
  });
}

// ------------------------------------------------------------------ objects
export function newObject(id) {
  return { id, color: PALETTE[(id - 1) % PALETTE.length], points: [], box: null, layer: null, score: null, token: 0 };
}

export function object(id) {
  if (!state.objects.has(id)) state.objects.set(id, newObject(id));
  return state.objects.get(id);
}

export function resetObjects(current) {
  state.objects = new Map([[current, newObject(current)]]);
  state.current = current;
}

// Every mask on the page: text instances first, so the objects' masks are drawn on top.
export function allLayers() {
  const layers = [];
  if (state.text) state.text.layers.forEach((layer, i) => layers.push({ layer, text: state.text.text, score: state.text.scores[i] }));
  for (const obj of state.objects.values()) if (obj.layer) layers.push({ layer: obj.layer, object_id: obj.id, score: obj.score });
  return layers;
}
