// Drawing one frame of the video mode: the decoded frame, every object's mask in its colour (a translucent
// fill and a solid outline, like the annotated MP4), and the prompts given on this frame.
import { decodeRle, outline } from './rle.js';

// The server's palette (sam3_api/media/masks.py PALETTE): object N has colour PALETTE[N % 16] here, in the
// annotated MP4 and in every export.
export const PALETTE = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40], [128, 0, 0],
  [170, 255, 195], [128, 128, 0], [0, 0, 128], [255, 225, 25]];
export const colour = (id) => PALETTE[id % PALETTE.length];
export const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
const KEEP_OVERLAYS = 32; // frames whose decoded masks are kept (scrubbing back and forth stays cheap)

export class VideoView {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.overlays = new Map(); // frame -> {objects, radius, fill, edge}: decoded masks, rebuilt when they change
  }

  resize(width, height) {
    Object.assign(this.canvas, { width, height });
    this.overlays.clear();
  }

  // Image pixels per CSS pixel of the displayed canvas.
  unit() {
    const rect = this.canvas.getBoundingClientRect();
    return rect.width ? this.canvas.width / rect.width : 1;
  }

  draw({ image, frame, objects, prompts, opacity, current, drag }) {
    const { ctx, canvas } = this;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (image) ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    else { ctx.fillStyle = '#777'; ctx.fillRect(0, 0, canvas.width, canvas.height); }
    if (objects && objects.length) {
      const layers = this.overlay(frame, objects);
      ctx.globalAlpha = opacity;
      ctx.drawImage(layers.fill, 0, 0);
      ctx.globalAlpha = 1;
      ctx.drawImage(layers.edge, 0, 0);
    }
    const unit = this.unit();
    for (const [id, prompt] of prompts) this.drawPrompt(prompt, colour(id), id === current, unit);
    if (drag && drag.moved) this.drawBox([drag.start.x, drag.start.y, drag.end.x, drag.end.y], [255, 255, 255], unit, true);
  }

  overlay(frame, objects) {
    const radius = Math.max(1, Math.round(this.unit()));
    const cached = this.overlays.get(frame);
    if (cached && cached.objects === objects && cached.radius === radius) return cached;
    const { width, height } = this.canvas;
    const fill = new ImageData(width, height);
    const edge = new ImageData(width, height);
    const fillWords = new Uint32Array(fill.data.buffer); // one RGBA pixel per word (little-endian: ABGR)
    const edgeWords = new Uint32Array(edge.data.buffer);
    for (const obj of objects) {
      const bits = decodeRle(obj.mask);
      const border = outline(bits, width, height, radius);
      const [r, g, b] = colour(obj.object_id);
      const word = ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
      for (let i = 0; i < bits.length; i++) {
        if (bits[i]) fillWords[i] = word;
        if (border[i]) edgeWords[i] = word;
      }
    }
    const layers = { objects, radius, fill: toCanvas(fill), edge: toCanvas(edge) };
    this.overlays.delete(frame);
    this.overlays.set(frame, layers);
    while (this.overlays.size > KEEP_OVERLAYS) this.overlays.delete(this.overlays.keys().next().value);
    return layers;
  }

  drawPrompt(prompt, color, isCurrent, unit) {
    const { ctx } = this;
    if (prompt.box) this.drawBox(prompt.box, color, unit);
    prompt.points.forEach(([x, y], i) => {
      ctx.beginPath();
      ctx.arc(x, y, 5 * unit, 0, 2 * Math.PI);
      ctx.fillStyle = prompt.labels[i] === 1 ? '#22c55e' : '#ef4444';
      ctx.fill();
      ctx.lineWidth = 2 * unit;
      ctx.strokeStyle = isCurrent ? '#ffffff' : rgb(color);
      ctx.stroke();
    });
  }

  drawBox([x1, y1, x2, y2], color, unit, dashed = false) {
    const { ctx } = this;
    ctx.save();
    ctx.lineWidth = 2 * unit;
    ctx.strokeStyle = rgb(color);
    if (dashed) ctx.setLineDash([6 * unit, 4 * unit]);
    ctx.strokeRect(Math.min(x1, x2), Math.min(y1, y2), Math.abs(x2 - x1), Math.abs(y2 - y1));
    ctx.restore();
  }
}

function toCanvas(imageData) {
  const canvas = document.createElement('canvas');
  Object.assign(canvas, { width: imageData.width, height: imageData.height });
  canvas.getContext('2d').putImageData(imageData, 0, 0);
  return canvas;
}
