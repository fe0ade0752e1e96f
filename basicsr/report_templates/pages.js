'use strict';
// Sortable tables and the crop viewer of the result pages. No library, no network: the page is one file.
(function () {
  // ---- sorting: a header with class "sort" sorts the body rows by the cells of its data-col column ----
  function sortKey(row, col, type) {
    const cell = row.cells[col];
    const raw = cell.hasAttribute('data-value') ? cell.getAttribute('data-value') : cell.textContent.trim();
    if (type === 'text') return raw;
    const value = parseFloat(raw);
    return Number.isNaN(value) ? null : value;
  }

  function sortBy(th) {
    const table = th.closest('table');
    const col = Number(th.dataset.col);
    const type = th.dataset.type || 'number';
    const ascending = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th[aria-sort]').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const x = sortKey(a, col, type);
      const y = sortKey(b, col, type);
      if (x === null || y === null) return (x === null) - (y === null);  // missing values last, either way
      const order = type === 'text' ? x.localeCompare(y, undefined, {numeric: true}) : x - y;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  document.querySelectorAll('table.sortable th.sort').forEach(function (th) {
    th.addEventListener('click', function () { sortBy(th); });
  });

  // ---- the crop viewer: bicubic | output(s) | HR of both views, one rectangle chosen on the overview ----
  function Viewer(el) {
    this.el = el;
    this.data = JSON.parse(el.querySelector('script.viewer-data').textContent);
    this.overview = el.querySelector('.overview');
    this.overviewImg = el.querySelector('.overview-img');
    this.box = el.querySelector('.crop-box');
    this.sizeSelect = el.querySelector('.crop-size');
    this.canvases = Array.from(el.querySelectorAll('canvas.crop'));
    this.where = el.querySelector('.crop-where');
    this.pair = null;
    this.images = [];
    this.x = 0;
    this.y = 0;
    this.size = Number(this.sizeSelect.value);
    const self = this;
    this.overviewImg.addEventListener('load', function () { self.centre(); });
    this.sizeSelect.addEventListener('change', function () {
      const cx = self.x + self.size / 2;
      const cy = self.y + self.size / 2;
      self.size = self.cropSide(Number(self.sizeSelect.value));
      self.moveTo(cx, cy);
    });
    let dragging = false;
    this.overview.addEventListener('pointerdown', function (event) {
      dragging = true;
      self.overview.setPointerCapture(event.pointerId);
      self.moveToEvent(event);
      event.preventDefault();
    });
    this.overview.addEventListener('pointermove', function (event) { if (dragging) self.moveToEvent(event); });
    this.overview.addEventListener('pointerup', function () { dragging = false; });
    this.overview.addEventListener('pointercancel', function () { dragging = false; });
    this.overview.addEventListener('keydown', function (event) {
      const step = Math.max(1, Math.round(self.size / 8));
      const moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
      const move = moves[event.key];
      if (!move) return;
      self.moveTo(self.x + self.size / 2 + move[0], self.y + self.size / 2 + move[1]);
      event.preventDefault();
    });
  }

  Viewer.prototype.width = function () { return this.overviewImg.naturalWidth; };
  Viewer.prototype.height = function () { return this.overviewImg.naturalHeight; };
  Viewer.prototype.cropSide = function (wanted) {
    const w = this.width();
    const h = this.height();
    return w && h ? Math.min(wanted, w, h) : wanted;
  };

  Viewer.prototype.show = function (index) {
    const pair = this.data.pairs[index];
    this.pair = pair;
    this.el.hidden = false;
    this.el.querySelector('.viewer-title').textContent = pair.name;
    this.el.querySelectorAll('.caption').forEach(function (td) {
      td.textContent = pair.captions[Number(td.dataset.source)] || '';
    });
    const self = this;
    this.images = pair.images.map(function (views) {
      return views.map(function (url) {
        const img = new Image();
        img.addEventListener('load', function () { self.draw(); });
        img.src = url;
        return img;
      });
    });
    // the overview is the HR left view (the last source) where there is one, else the first output
    const last = pair.images[pair.images.length - 1];
    if (this.overviewImg.getAttribute('src') === last[0] && this.overviewImg.complete) this.centre();
    else this.overviewImg.src = last[0];
  };

  Viewer.prototype.centre = function () {
    this.size = this.cropSide(Number(this.sizeSelect.value));
    this.moveTo(this.width() / 2, this.height() / 2);
  };

  Viewer.prototype.moveToEvent = function (event) {
    const rect = this.overviewImg.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    this.moveTo((event.clientX - rect.left) / rect.width * this.width(),
                (event.clientY - rect.top) / rect.height * this.height());
  };

  // put the crop's centre at image pixel (cx, cy), kept inside the image
  Viewer.prototype.moveTo = function (cx, cy) {
    const w = this.width();
    const h = this.height();
    if (!w || !h) return;
    const side = this.size;
    this.x = Math.max(0, Math.min(w - side, Math.round(cx - side / 2)));
    this.y = Math.max(0, Math.min(h - side, Math.round(cy - side / 2)));
    this.box.style.left = (100 * this.x / w) + '%';
    this.box.style.top = (100 * this.y / h) + '%';
    this.box.style.width = (100 * side / w) + '%';
    this.box.style.height = (100 * side / h) + '%';
    this.where.textContent = side + '\u00d7' + side + ' px at x ' + this.x + ', y ' + this.y;
    this.draw();
  };

  Viewer.prototype.draw = function () {
    const self = this;
    this.canvases.forEach(function (canvas) {
      const img = (self.images[Number(canvas.dataset.source)] || [])[Number(canvas.dataset.view)];
      const ctx = canvas.getContext('2d');
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      canvas.removeAttribute('data-drawn');
      if (!img || !img.complete || !img.naturalWidth || !self.width()) return;
      ctx.imageSmoothingEnabled = false;  // enlarged pixels, as the papers' crops
      ctx.drawImage(img, self.x, self.y, self.size, self.size, 0, 0, canvas.width, canvas.height);
      canvas.dataset.src = img.getAttribute('src');
      canvas.dataset.sx = self.x;
      canvas.dataset.sy = self.y;
      canvas.dataset.size = self.size;
      canvas.dataset.drawn = '1';
    });
  };

  document.querySelectorAll('table.pairs').forEach(function (table) {
    const el = table.dataset.viewer ? document.getElementById(table.dataset.viewer) : null;
    if (!el) return;
    const viewer = new Viewer(el);
    function select(row) {
      table.querySelectorAll('tr[aria-selected]').forEach(function (r) { r.removeAttribute('aria-selected'); });
      row.setAttribute('aria-selected', 'true');
      viewer.show(Number(row.dataset.pair));
    }
    table.tBodies[0].addEventListener('click', function (event) {
      const row = event.target.closest('tr.pair');
      if (row) select(row);
    });
    table.tBodies[0].addEventListener('keydown', function (event) {
      const row = event.target.closest('tr.pair');
      if (row && (event.key === 'Enter' || event.key === ' ')) { select(row); event.preventDefault(); }
    });
  });
}());
