// Video mode of /app: a session on WebSocket /ws/video. Load a video (uploaded once over HTTP, opened by id),
// click objects on any frame, Track (the masks arrive frame by frame), scrub, correct, export.
// State lives here; the DOM controls are wired in controls.js, the drawing is view.js.
import { FrameCache, getRoutingKey, setRoutingKey, socketUrl, uploadVideo, videoKey } from './server.js';
import { VideoView } from './view.js';
import { wireControls } from './controls.js';

const $ = (id) => document.getElementById(id);
export const ui = {
  status: $('video-status'), stage: $('video-stage'), canvas: $('video-canvas'), placeholder: $('video-placeholder'),
  file: $('video-input'), urlForm: $('video-url-form'), url: $('video-url'), negative: $('video-negative'),
  newObject: $('video-new-object'), undo: $('video-undo'), reset: $('video-reset'), opacity: $('video-opacity'),
  textForm: $('video-text-form'), text: $('video-text'), play: $('play'), slider: $('frame-slider'),
  frameLabel: $('frame-label'), direction: $('direction'), track: $('track'), cancel: $('cancel-track'),
  progress: $('progress'), progressFill: $('progress-fill'), progressText: $('progress-text'),
  objects: $('video-objects'), exportJson: $('export-json'), exportMp4: $('export-mp4'),
};

export const state = {
  ws: null, video: null, frames: null, frame: 0, image: null, current: 1, negative: false, drag: null,
  source: null, sourceName: '', pendingOpen: null, reopening: false, // to open (again) after a (re)connect
  objects: new Map(), // id -> {id, label, prompts: Map(frame -> {points, labels, box})}
  results: new Map(), // frame -> [{object_id, score, box, mask}] (latest masks of that frame)
  tracking: false, playing: false, pendingExport: null,
};
export const view = new VideoView(ui.canvas);

export function setStatus(text, kind = '') {
  ui.status.textContent = text;
  ui.status.className = `status ${kind}`;
}

export function send(message) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    setStatus('Not connected to the server yet; retrying…', 'error');
    return false;
  }
  state.ws.send(JSON.stringify(message));
  return true;
}

function connect() {
  const ws = new WebSocket(socketUrl('/ws/video'));
  ws.routingKey = getRoutingKey();
  state.ws = ws;
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (handlers[message.type]) handlers[message.type](message);
  };
  ws.onclose = (event) => {
    if (state.ws !== ws || event.code === 1008) return; // 1008: refused API key, retrying cannot help
    state.tracking = false;
    syncButtons();
    setStatus(`Disconnected (code ${event.code}${event.reason ? `, ${event.reason}` : ''}); reconnecting…`, 'error');
    setTimeout(connect, event.code === 1013 ? 5000 : 1500);
  };
}

// ------------------------------------------------------------------ objects, frames, drawing
export function object(id, label) {
  if (!state.objects.has(id)) state.objects.set(id, { id, label: label || `Object ${id}`, prompts: new Map() });
  return state.objects.get(id);
}

function forgetObject(id) {
  state.objects.delete(id);
  for (const [frame, objects] of state.results) state.results.set(frame, objects.filter((o) => o.object_id !== id));
}

function promptsOn(frame) {
  const found = [];
  for (const obj of state.objects.values()) if (obj.prompts.has(frame)) found.push([obj.id, obj.prompts.get(frame)]);
  return found;
}

export function render() {
  if (!state.video) return;
  view.draw({ image: state.image, frame: state.frame, objects: state.results.get(state.frame), opacity: Number(ui.opacity.value),
    prompts: promptsOn(state.frame), current: state.current, drag: state.drag });
  ui.canvas.dataset.frame = String(state.frame); // tests wait for the frame they asked for
  document.dispatchEvent(new CustomEvent('sam3:video-drawn'));
}

// Show frame k: its picture arrives from the server (cached), its masks are drawn over it.
export async function showFrame(k) {
  state.frame = k;
  ui.slider.value = String(k);
  ui.frameLabel.textContent = `${k} / ${state.video.frame_count - 1}`;
  try {
    const image = await state.frames.get(k);
    if (state.frame !== k) return; // the slider moved on meanwhile
    state.image = image;
    render();
  } catch (err) {
    setStatus(`Frame ${k} could not be loaded: ${err.message}`, 'error');
  }
}

export function setProgress(done, total) {
  ui.progressText.textContent = `${done} / ${total}`;
  ui.progressFill.style.width = total ? `${(100 * done) / total}%` : '0';
  ui.progress.setAttribute('aria-valuenow', String(done));
  ui.progress.setAttribute('aria-valuemax', String(total));
}

export function syncButtons() {
  const open = Boolean(state.video);
  ui.track.disabled = !open || state.tracking;
  ui.cancel.disabled = !state.tracking;
  ui.slider.disabled = !open;
  for (const button of [ui.play, ui.exportJson, ui.exportMp4, ui.undo, ui.reset, ui.newObject]) button.disabled = !open;
}

// ------------------------------------------------------------------ server events
const fmt = (ms) => (ms < 10 ? ms.toFixed(1) : Math.round(ms).toString());

const handlers = {
  session_created() {
    const videoId = state.pendingOpen || (state.video && state.video.video_id);
    state.reopening = !state.pendingOpen && Boolean(videoId);
    state.pendingOpen = null;
    if (videoId) { // a new video on its replica's socket, or a reconnect: a new session, objects start over
      send({ type: 'open', video_id: videoId });
      setStatus(state.reopening ? 'Reconnected; reopening the video (objects start over)…' : 'Opening the video…');
    } else setStatus('Connected. Choose or drop a video.', 'ok');
  },
  video_opened(ev) {
    Object.assign(state, { video: ev, frames: new FrameCache(ev.frame_url), current: ev.object_id, image: null,
      tracking: false, reopening: false });
    state.objects.clear();
    state.results.clear();
    view.resize(ev.width, ev.height);
    ui.canvas.hidden = false;
    ui.placeholder.hidden = true;
    ui.slider.max = String(ev.frame_count - 1);
    setProgress(0, ev.frame_count);
    syncButtons();
    fitCanvas();
    showFrame(0);
    setStatus(`Video ${ev.width}×${ev.height}, ${ev.frame_count} frames, ready in ${fmt(ev.latency_ms)} ms. ` +
      'Click an object, then Track.', 'ok');
  },
  prompt_result(ev) {
    const obj = object(ev.object_id);
    if (ev.points.length || ev.box) obj.prompts.set(ev.frame, { points: ev.points, labels: ev.labels, box: ev.box });
    else obj.prompts.delete(ev.frame);
    state.current = ev.object_id;
    state.results.set(ev.frame, ev.objects);
    if (ev.frame === state.frame) render();
    const mine = ev.objects.find((o) => o.object_id === ev.object_id);
    const negatives = ev.labels.filter((label) => label === 0).length;
    setStatus(`Object ${ev.object_id} on frame ${ev.frame}: score ${mine ? mine.score.toFixed(3) : '–'} · ` +
      `${ev.points.length - negatives} positive, ${negatives} negative${ev.box ? ', 1 box' : ''} · ` +
      `${fmt(ev.latency_ms)} ms${ev.cached ? '' : ' (new frame encoded)'}`, 'ok');
  },
  concept_result(ev) {
    ev.object_ids.forEach((id) => object(id, ev.text));
    state.results.set(ev.frame, ev.objects);
    if (ev.frame === state.frame) render();
    setStatus(`“${ev.text}” on frame ${ev.frame}: ${ev.object_ids.length} object(s) · ${fmt(ev.latency_ms)} ms`, 'ok');
  },
  object_created(ev) { object(ev.object_id); state.current = ev.object_id; render(); setStatus(`Object ${ev.object_id}: click it on any frame.`); },
  object_removed(ev) { forgetObject(ev.object_id); state.current = ev.current_object_id; render(); },
  object_renamed(ev) { object(ev.object_id).label = ev.label; render(); },
  session_reset(ev) { state.objects.clear(); state.results.clear(); state.current = ev.object_id; render(); },
  propagation_started(ev) {
    state.tracking = true;
    syncButtons();
    setProgress(0, ev.frames_total);
    setStatus(`Tracking ${ev.direction} from frame ${ev.from_frame}…`);
  },
  frame_result(ev) {
    state.results.set(ev.frame, ev.objects);
    if (ev.source === 'propagation') setProgress(ev.frames_done, ev.frames_total);
    if (ev.frame === state.frame) render();
  },
  propagation_done(ev) {
    state.tracking = false;
    syncButtons();
    setProgress(ev.frames_done, ev.frames_total);
    const text = `Tracking ${ev.status}: ${ev.frames_done} / ${ev.frames_total} frames at ${ev.fps.toFixed(1)} frames/s`;
    setStatus(ev.error ? `${text}: ${ev.error}` : text, ev.status === 'failed' ? 'error' : 'ok');
  },
  exported(ev) { if (state.pendingExport) state.pendingExport.resolve(ev); state.pendingExport = null; },
  error(ev) {
    if (state.reopening && ev.code === 'not_found' && state.source) { // this server does not hold it: upload again
      state.reopening = false;
      loadVideo(state.source, state.sourceName);
      return;
    }
    if (state.pendingExport) state.pendingExport.reject(new Error(ev.message));
    state.pendingExport = null;
    setStatus(`Error: ${ev.message}`, 'error');
  },
  session_closed(ev) { setStatus(`Session closed (${ev.reason}).`); },
};

// ------------------------------------------------------------------ loading and layout
export async function loadVideo(source, name) {
  state.playing = false;
  Object.assign(state, { source, sourceName: name });
  setStatus(`Uploading and decoding ${name}…`);
  try {
    setRoutingKey(await videoKey(source));
    const uploaded = await uploadVideo(source);
    if (state.ws && state.ws.routingKey !== getRoutingKey()) { // it may live on another replica: reconnect
      const old = state.ws;
      old.onmessage = null; // late answers about the previous video are dropped
      state.pendingOpen = uploaded.video_id;
      connect(); // its session_created opens the video
      old.close(1000, 'new video');
    } else if (send({ type: 'open', video_id: uploaded.video_id })) setStatus(`Opening ${name}…`);
  } catch (err) {
    setStatus(`The video could not be loaded: ${err.message}`, 'error');
  }
}

// Scale the canvas (CSS only) to the stage's width and 70 % of the window's height.
export function fitCanvas() {
  if (!state.video || !ui.stage.clientWidth) return;
  const scale = Math.min((ui.stage.clientWidth - 12) / state.video.width, (0.7 * innerHeight) / state.video.height);
  ui.canvas.style.width = `${Math.floor(state.video.width * scale)}px`;
  ui.canvas.style.height = `${Math.floor(state.video.height * scale)}px`;
  render();
}

function activate() {
  if (!state.ws) connect(); // the socket (a session on the server) opens only once video mode is used
  fitCanvas();
}

wireControls();
syncButtons();
window.addEventListener('sam3:mode', (event) => { if (event.detail === 'video') activate(); });
if (document.body.dataset.mode === 'video') activate();
window.sam3Video = { state, send }; // handy from the console and for tests
