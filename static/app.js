// Click-to-segment page, image mode, on /ws/realtime. Vanilla JS modules, no dependencies, works offline:
// image/page.js (state), image/socket.js (the session), image/draw.js (the canvas), image/input.js (pointer,
// loading, tools), image/export.js (downloads). Video mode lives in video/, the mode switch in modes.js.
import { wireDownloads } from './image/export.js';
import { wireInputs } from './image/input.js';
import { connect, send } from './image/socket.js';
import { state } from './image/page.js';

// Say so when the server runs the random-weight development model: its masks are meant to look random.
async function showModelNote() {
  try {
    const health = await (await fetch('/health')).json();
    if (health.trained_weights === false) {
      const note = document.getElementById('model-note');
      note.textContent = `Development model (${health.model}): random weights, masks are meaningless.`;
      note.hidden = false;
    }
  } catch (err) { /* the status line already reports connection problems */ }
}

wireInputs();
wireDownloads();
showModelNote();
connect();
window.sam3App = { state, send }; // handy from the console and for tests
