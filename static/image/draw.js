// Drawing the image mode's canvas: the photo, every mask blended at the chosen opacity, the prompts, and the
// object list beside it. Pointer positions are mapped from CSS pixels to image pixels (toImage).
import { allLayers, ctx, loadImage, rgb, state, ui } from './page.js';

const overlay = document.createElement('canvas');
const overlayCtx = overlay.getContext('2d');

// A server mask (PNG base64, 0/255; the page keeps the default mask_format) -> coloured layer + 0/1 bits.
export async function maskLayer(mask, color) {
  const { width, height } = state;
  const img = await loadImage(`data:image/png;base64,${mask}`);
  const scratch = document.createElement('canvas');
  Object.assign(scratch, { width, height });
  const sctx = scratch.getContext('2d');
  sctx.drawImage(img, 0, 0, width, height);
  const gray = sctx.getImageData(0, 0, width, height).data;
  const bits = new Uint8Array(width * height);
  for (let i = 0; i < bits.length; i++) bits[i] = gray[4 * i] > 127 ? 1 : 0;
  const canvas = document.createElement('canvas');
  Object.assign(canvas, { width, height });
  const lctx = canvas.getContext('2d');
  const data = lctx.createImageData(width, height);
  for (let i = 0; i < bits.length; i++) {
    if (!bits[i]) continue;
    data.data.set([color[0], color[1], color[2], 255], 4 * i);
  }
  lctx.putImageData(data, 0, 0);
  return { canvas, bits, color };
}

export function render() {
  const { width, height } = state;
  if (!width) return;
  ctx.clearRect(0, 0, width, height);
  if (state.image) ctx.drawImage(state.image, 0, 0, width, height);
  else { ctx.fillStyle = '#888'; ctx.fillRect(0, 0, width, height); }
  // Masks are stacked opaque on one layer first, so overlapping masks do not hide the photo.
  if (overlay.width !== width || overlay.height !== height) Object.assign(overlay, { width, height });
  overlayCtx.clearRect(0, 0, width, height);
  for (const { layer } of allLayers()) overlayCtx.drawImage(layer.canvas, 0, 0);
  ctx.globalAlpha = Number(ui.opacity.value);
  ctx.drawImage(overlay, 0, 0);
  ctx.globalAlpha = 1;
  const unit = pixelsPerCssPixel();
  for (const obj of state.objects.values()) drawPrompts(obj, unit);
  if (state.drag && state.drag.moved) drawBox([state.drag.start, state.drag.end], [255, 255, 255], unit, true);
  renderObjectList();
}

function drawPrompts(obj, unit) {
  if (obj.box) drawBox([{ x: obj.box[0], y: obj.box[1] }, { x: obj.box[2], y: obj.box[3] }], obj.color, unit);
  for (const p of obj.points) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, 6 * unit, 0, 2 * Math.PI);
    ctx.fillStyle = p.label === 1 ? '#22c55e' : '#ef4444';
    ctx.fill();
    ctx.lineWidth = 2 * unit;
    ctx.strokeStyle = obj.id === state.current ? '#ffffff' : rgb(obj.color);
    ctx.stroke();
  }
}

function drawBox([a, b], color, unit, dashed = false) {
  ctx.save();
  ctx.lineWidth = 2 * unit;
  ctx.strokeStyle = rgb(color);
  if (dashed) ctx.setLineDash([6 * unit, 4 * unit]);
  ctx.strokeRect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x), Math.abs(b.y - a.y));
  ctx.restore();
}

function renderObjectList() {
  ui.objects.replaceChildren(...[...state.objects.values()].map((obj) => {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = obj.id === state.current ? 'current' : '';
    button.dataset.objectId = String(obj.id);
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = rgb(obj.color);
    const score = obj.score == null ? '' : ` · ${obj.score.toFixed(2)}`;
    button.append(swatch, `Object ${obj.id}${score}`);
    button.addEventListener('click', () => { state.current = obj.id; render(); });
    item.append(button);
    return item;
  }));
  const current = state.objects.get(state.current);
  const pos = current ? current.points.filter((p) => p.label === 1).length : 0;
  const neg = current ? current.points.length - pos : 0;
  ui.points.textContent = current ? `Object ${current.id}: ${pos} positive, ${neg} negative` +
    `${current.box ? ', 1 box' : ''}` : '';
}

function pixelsPerCssPixel() {
  const rect = ui.canvas.getBoundingClientRect();
  return rect.width ? state.width / rect.width : 1;
}

// CSS pixels of the pointer -> pixels of the original image (the canvas is scaled by CSS).
export function toImage(event) {
  const rect = ui.canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) * state.width) / rect.width;
  const y = ((event.clientY - rect.top) * state.height) / rect.height;
  const clamp = (v, max) => Math.round(Math.min(Math.max(v, 0), max) * 10) / 10;
  return { x: clamp(x, state.width), y: clamp(y, state.height) };
}
