// The video mode's controls: loading, pointer prompts on the canvas, frame slider and play, objects, Track,
// export. Every prompt names its frame and object; the server answers with that frame's masks.
import { download } from '../common.js';
import { exportedFrames, exportedVideo } from './server.js';
import { colour, rgb } from './view.js';
import { fitCanvas, loadVideo, render, send, setStatus, showFrame, state, ui } from './main.js';

const DRAG_PX = 8; // CSS pixels a pointer must travel before a press becomes a box drag
const PREFETCH = 4; // frames fetched ahead while playing

// CSS pixels of the pointer -> pixels of the video (the canvas is scaled by CSS).
function toVideo(event) {
  const rect = ui.canvas.getBoundingClientRect();
  const { width, height } = state.video;
  const clamp = (v, max) => Math.round(Math.min(Math.max(v, 0), max) * 10) / 10;
  return { x: clamp(((event.clientX - rect.left) * width) / rect.width, width),
    y: clamp(((event.clientY - rect.top) * height) / rect.height, height) };
}

// A prompt while tracking stops the tracking first (the server refuses changes during a propagation).
function sendPrompt(message) {
  if (state.tracking) send({ type: 'cancel' });
  send({ ...message, frame: state.frame, object_id: state.current });
}

function wirePointer() {
  ui.canvas.addEventListener('contextmenu', (event) => event.preventDefault());
  ui.canvas.addEventListener('pointerdown', (event) => {
    if (!state.video || (event.button !== 0 && event.button !== 2)) return;
    event.preventDefault();
    ui.canvas.setPointerCapture(event.pointerId);
    const start = toVideo(event);
    state.drag = { start, end: start, x: event.clientX, y: event.clientY, button: event.button, moved: false };
  });
  ui.canvas.addEventListener('pointermove', (event) => {
    const drag = state.drag;
    if (!drag) return;
    drag.moved = drag.moved || Math.hypot(event.clientX - drag.x, event.clientY - drag.y) > DRAG_PX;
    drag.end = toVideo(event);
    if (drag.moved) render();
  });
  ui.canvas.addEventListener('pointerup', (event) => {
    const drag = state.drag;
    state.drag = null;
    if (!drag) return;
    const end = toVideo(event);
    const [x1, x2] = [drag.start.x, end.x].sort((a, b) => a - b);
    const [y1, y2] = [drag.start.y, end.y].sort((a, b) => a - b);
    if (drag.moved && drag.button === 0 && x2 > x1 && y2 > y1) sendPrompt({ type: 'box', x1, y1, x2, y2 });
    else if (!drag.moved) sendPrompt({ type: 'click', x: drag.start.x, y: drag.start.y, label: drag.button === 2 || state.negative ? 0 : 1 });
    render();
  });
  ui.canvas.addEventListener('pointercancel', () => { state.drag = null; render(); });
}

// ------------------------------------------------------------------ frames: slider and play
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function prefetch(from) {
  for (let k = from; k < Math.min(from + PREFETCH, state.video.frame_count); k++) state.frames.get(k).catch(() => {});
}

async function play() {
  state.playing = true;
  ui.play.textContent = '❚❚';
  ui.play.setAttribute('aria-label', 'Pause');
  if (state.frame >= state.video.frame_count - 1) await showFrame(0);
  while (state.playing && state.frame < state.video.frame_count - 1) {
    const started = performance.now();
    prefetch(state.frame + 2);
    await showFrame(state.frame + 1);
    await sleep(Math.max(0, 1000 / (state.video.fps || 24) - (performance.now() - started)));
  }
  pause();
}

function pause() {
  state.playing = false;
  ui.play.textContent = '▶';
  ui.play.setAttribute('aria-label', 'Play');
}

function wireFrames() {
  const follow = () => { pause(); if (Number(ui.slider.value) !== state.frame || !state.image) showFrame(Number(ui.slider.value)); };
  ui.slider.addEventListener('input', follow); // while dragging
  ui.slider.addEventListener('change', follow); // keyboards and scripts that set the value and say so
  ui.play.addEventListener('click', () => (state.playing ? pause() : play()));
  window.addEventListener('resize', fitCanvas);
}

// ------------------------------------------------------------------ objects list
function objectItem(obj) {
  const item = document.createElement('li');
  item.className = obj.id === state.current ? 'current' : '';
  item.dataset.objectId = String(obj.id);
  const select = document.createElement('button');
  select.type = 'button';
  select.className = 'swatch-button';
  select.title = `Select object ${obj.id}`;
  select.innerHTML = `<span class="swatch" style="background:${rgb(colour(obj.id))}"></span>${obj.id}`;
  select.addEventListener('click', () => { state.current = obj.id; render(); });
  const name = document.createElement('input');
  Object.assign(name, { type: 'text', value: obj.label, maxLength: 200, title: 'Rename' });
  name.setAttribute('aria-label', `Name of object ${obj.id}`);
  name.addEventListener('change', () => {
    if (name.value.trim()) send({ type: 'rename_object', object_id: obj.id, label: name.value.trim() });
    name.blur();
  });
  const remove = document.createElement('button');
  Object.assign(remove, { type: 'button', textContent: '×', title: `Remove object ${obj.id}` });
  remove.addEventListener('click', () => { if (state.tracking) send({ type: 'cancel' }); send({ type: 'remove_object', object_id: obj.id }); });
  item.append(select, name, remove);
  return item;
}

function renderObjects() {
  const typing = document.activeElement;
  if (typing && typing.tagName === 'INPUT' && ui.objects.contains(typing) && state.objects.has(Number(typing.closest('li').dataset.objectId))) {
    return; // do not replace the name a user is typing
  }
  ui.objects.replaceChildren(...[...state.objects.values()].map(objectItem));
}

// ------------------------------------------------------------------ tools, tracking, export
async function exportResults(annotated) {
  if (state.tracking) { setStatus('Tracking is running: wait for it or cancel it first.', 'error'); return null; }
  setStatus(annotated ? 'Rendering the annotated video…' : 'Exporting…');
  const exported = new Promise((resolve, reject) => { state.pendingExport = { resolve, reject }; });
  if (!send({ type: 'export', annotated_video: annotated })) return null;
  try {
    return await exported;
  } catch (err) { return null; } // the error event already says why
}

async function exportJson() {
  const job = await exportResults(false);
  if (!job) return;
  const frames = await exportedFrames(job.job_id);
  const { video_id, width, height, fps, frame_count, start_frame, frame_stride } = state.video;
  const objects = [...state.objects.values()].map((obj) => ({ object_id: obj.id, label: obj.label }));
  const body = { video: { video_id, width, height, fps, frame_count, start_frame, frame_stride }, job_id: job.job_id,
    mask_format: 'coco_rle', objects, frames };
  download(new Blob([JSON.stringify(body)], { type: 'application/json' }), 'video-masks.coco-rle.json');
  setStatus(`Exported ${frames.length} frames (job ${job.job_id}).`, 'ok');
}

async function exportMp4() {
  const job = await exportResults(true);
  if (!job) return;
  download(await exportedVideo(job.job_id), 'video-annotated.mp4');
  setStatus(`Annotated video exported (job ${job.job_id}).`, 'ok');
}

function wireTools() {
  ui.negative.addEventListener('click', () => {
    state.negative = !state.negative;
    ui.negative.setAttribute('aria-pressed', String(state.negative));
    ui.negative.textContent = state.negative ? '− Negative' : '+ Positive';
  });
  ui.newObject.addEventListener('click', () => send({ type: 'new_object' }));
  ui.undo.addEventListener('click', () => { if (state.tracking) send({ type: 'cancel' }); send({ type: 'undo', object_id: state.current }); });
  ui.reset.addEventListener('click', () => { if (state.tracking) send({ type: 'cancel' }); send({ type: 'reset' }); });
  ui.opacity.addEventListener('input', render);
  ui.textForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.text.value.trim();
    if (text && state.video) sendPrompt({ type: 'text', text });
  });
  ui.track.addEventListener('click', () => send({ type: 'propagate', direction: ui.direction.value }));
  ui.cancel.addEventListener('click', () => send({ type: 'cancel' }));
  ui.exportJson.addEventListener('click', () => exportJson().catch((err) => setStatus(`Export failed: ${err.message}`, 'error')));
  ui.exportMp4.addEventListener('click', () => exportMp4().catch((err) => setStatus(`Export failed: ${err.message}`, 'error')));
}

function wireLoading() {
  ui.file.addEventListener('change', () => { const file = ui.file.files[0]; if (file) loadVideo(file, file.name); });
  ui.urlForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const url = ui.url.value.trim();
    if (url) loadVideo({ video_url: url }, url);
  });
  ui.stage.addEventListener('dragover', (event) => { event.preventDefault(); ui.stage.classList.add('dragover'); });
  ui.stage.addEventListener('dragleave', () => ui.stage.classList.remove('dragover'));
  ui.stage.addEventListener('drop', (event) => {
    event.preventDefault();
    ui.stage.classList.remove('dragover');
    const file = event.dataTransfer.files[0];
    if (file) loadVideo(file, file.name);
  });
}

export function wireControls() {
  wirePointer();
  wireFrames();
  wireTools();
  wireLoading();
  document.addEventListener('sam3:video-drawn', renderObjects);
}
