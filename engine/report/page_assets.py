"""The report page's stylesheet and its one inline script (it sorts the summary table and
mounts collapsed model sections when opened), kept apart from the page's HTML."""

import base64
import hashlib

CSS = """
:root{--live:#1a7f37;--paper:#0969da;--retrain:#b35900;--drop:#cf222e;--error:#6e40c9;--none:#6e7781;
--approved:#1a7f37;--review:#b35900;--ink:#1f2328;--muted:#656d76;--line:#d8dee4;--bg:#f6f8fa;--card:#fff}
*{box-sizing:border-box}
details.lazy>summary{cursor:pointer;color:var(--muted);margin:.5em 0;font-weight:600}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue","Liberation Sans",Arial,sans-serif;font-variant-numeric:tabular-nums}
main{max-width:1240px;margin:0 auto;padding:20px 24px 60px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;background:#eff2f5;
padding:1px 4px;border-radius:4px;word-break:break-all}
header{background:#0d1117;color:#e6edf3;padding:22px 24px 18px;border-radius:10px}
header code{background:#21262d;color:#e6edf3}
.brand{font-size:12px;letter-spacing:.14em;text-transform:uppercase;color:#7d8590}
h1{margin:2px 0 2px;font-size:24px;font-weight:650}
.when{color:#9198a1;font-size:13px}
.settings{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:8px 20px;margin-top:14px}
.settings span,.wf span,.tile span{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
header .settings span{color:#7d8590}
.settings b{font-weight:550}.settings .wide{grid-column:1/-1}
.versions{margin-top:12px;font-size:12px;color:#7d8590}
h2{margin:0;font-size:20px}
h2 small{font-weight:400;color:var(--muted);font-size:14px}
h3{margin:0 0 4px;font-size:15px}
h4{margin:18px 0 8px;font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.card,.model{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin-top:18px}
.model{content-visibility:auto;contain-intrinsic-size:auto 1150px;border-top:4px solid var(--c,var(--none))}
.m-live{--c:var(--live)}.m-paper{--c:var(--paper)}.m-retrain{--c:var(--retrain)}.m-drop{--c:var(--drop)}.m-error{--c:var(--error)}
.counts{display:flex;gap:10px;flex-wrap:wrap;margin:4px 0 14px}
.count{border:1px solid var(--line);border-radius:8px;padding:6px 14px;min-width:96px;border-left:4px solid var(--c)}
.count b{display:block;font-size:22px;line-height:1.1}.count span{font-size:12px;color:var(--muted)}
.badge{display:inline-block;padding:2px 9px;border-radius:999px;font-size:12px;font-weight:650;letter-spacing:.03em;
color:#fff;background:var(--none);white-space:nowrap}
.b-live,.b-approved{background:var(--live)}.b-paper{background:var(--paper)}.b-retrain,.b-review{background:var(--retrain)}
.b-drop{background:var(--drop)}.b-error{background:var(--error)}
.mhead{display:flex;align-items:center;gap:10px;flex-wrap:wrap}.spacer{flex:1}
.top{font-size:12px;color:var(--muted);text-decoration:none}
.meta{color:var(--muted);font-size:12px;margin-top:4px}
.verdict{margin-top:12px;border-left:4px solid var(--c,var(--none));background:#f6f8fa;padding:10px 14px;border-radius:0 8px 8px 0}
.v-live{--c:var(--live);background:#eefbf1}.v-paper{--c:var(--paper);background:#eef5ff}
.v-retrain{--c:var(--retrain);background:#fff6e8}.v-drop{--c:var(--drop);background:#fff0f0}.v-error{--c:var(--error);background:#f6f0ff}
.verdict h3{color:var(--c,var(--ink))}.verdict ul{margin:4px 0 0;padding-left:20px}.verdict .err{margin:2px 0;font-weight:550}
.wf{display:grid;grid-template-columns:repeat(auto-fill,minmax(124px,1fr));gap:8px 16px;margin-top:14px}
.wf b,.tile b{font-weight:600;font-size:15px}
.cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:28px}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:8px}
.tile{background:#f6f8fa;border-radius:6px;padding:6px 9px}
.sub{color:var(--muted);font-size:12px;margin:-4px 0 8px}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 8px;text-align:right;border-bottom:1px solid #eaeef2;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);border-bottom:1px solid var(--line);font-weight:600}
tbody tr:hover{background:#f6f8fa}
.gate tbody th{text-align:left;font-weight:500}.gate td.th{color:var(--muted)}
.summary th{cursor:pointer;user-select:none}.summary th[aria-sort=ascending]::after{content:" \\25B2"}
.summary th[aria-sort=descending]::after{content:" \\25BC"}
.summary a{color:var(--ink);font-weight:650;text-decoration:none}.summary a:hover{text-decoration:underline}
td.notes{text-align:left;font-size:12px}.notes div{max-width:200px;overflow:hidden;text-overflow:ellipsis}
.scroll{overflow-x:auto}.summary td:nth-child(2),.summary td:nth-child(3),.summary th:nth-child(2),
.summary th:nth-child(3){text-align:center}.summary{font-size:13px}.summary td,.summary th{padding:5px 6px}
.summary small{color:var(--muted);font-weight:400}.summary thead th{white-space:normal;vertical-align:bottom}.summary th:last-child{text-align:left}
td.per{color:var(--muted);text-align:left}.folds th:nth-child(2){text-align:left}
.pos{color:#1a7f37}.neg{color:#cf222e}.na,.muted{color:#8c959f}
.errtxt{color:var(--error)}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:4px;background:#fff1cc;color:#7a4d00;font-weight:600}
.tag.warn{background:#ffd8d3;color:#8a1c12}
.flags{margin:8px 0 0;padding-left:18px;font-size:13px}.flags li{margin:2px 0}
.cp{font-size:13px;color:#7a4d00;background:#fff8e5;padding:6px 10px;border-radius:6px}
.charts{display:grid;grid-template-columns:minmax(0,2.2fr) minmax(0,1fr);gap:18px;margin-top:16px;align-items:start}
.chart{border:1px solid #eaeef2;border-radius:8px;padding:8px 10px}
.ct{font-size:12px;font-weight:600;color:var(--muted);margin:2px 0}
svg.plot{width:100%;height:auto;display:block;overflow:visible}
svg .grid{stroke:#eaeef2;stroke-width:1}svg .zero{stroke:#8c959f;stroke-width:1}svg .axis,svg .tick{stroke:#afb8c1}
svg text{font-size:11px;fill:#656d76}svg .yt{text-anchor:end}svg .xt{text-anchor:middle}svg .xl{text-anchor:end;font-size:10px}
svg .ln{fill:none;stroke-width:1.6;stroke-linejoin:round;transition:opacity .12s}
svg .bar.pos{fill:#2da44e}svg .bar.neg{fill:#e5534b}svg .bar.is{opacity:.45}
svg .bv{text-anchor:middle;font-size:11px;fill:#1f2328;font-weight:600}
svg .mean{stroke:#1f2328;stroke-dasharray:4 3;stroke-width:1}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin-top:6px}
.lg{cursor:default;white-space:nowrap}.lg b{font-weight:600}
.sw{display:inline-block;width:14px;height:3px;background:var(--c);vertical-align:middle;margin-right:5px;border-radius:2px}
.sw.dash{background:repeating-linear-gradient(90deg,var(--c) 0 5px,transparent 5px 8px)}
.folds td:first-child{font-weight:600}
svg .shade{fill:#f1f3f5}svg .sl{text-anchor:middle;font-size:10px;fill:#8c959f}
svg .fb{stroke:#afb8c1;stroke-dasharray:2 3}svg .fl{font-size:10px;fill:#656d76}
svg .ln.pol{stroke:#0969da}svg .ln.bh{stroke:#6e7781;stroke-width:1.3}
svg .ci{stroke:#0969da;stroke-width:1.6}svg .ci.neg{stroke:#cf222e}svg .ci.all{stroke:#1f2328;stroke-width:2.2}
svg .pt{fill:#0969da}svg .pt.neg{fill:#cf222e}svg .pt.is{fill:#fff;stroke:#8c959f;stroke-width:1.5}
svg .pt.all{fill:#1f2328}svg .fn{text-anchor:end;font-size:10px;fill:#8c959f}
.sw.shade{background:#e3e6ea;height:10px}.other{margin:6px 0 0;font-size:13px;color:var(--muted)}
.charts.one{grid-template-columns:minmax(0,1fr)}.wf.ev{margin-top:4px}.wf small{font-weight:400;color:var(--muted)}
.empty{color:var(--muted);padding:30px;text-align:center}
@media (max-width:900px){.cols,.charts{grid-template-columns:1fr}.tiles{grid-template-columns:repeat(2,1fr)}}
@media print{body{background:#fff}.model{content-visibility:visible;break-inside:avoid}header{background:#fff;color:#000}}
"""

# Sorts the summary table by a clicked column; numbers compare as numbers, blanks last.
SCRIPT = """(function(){var t=document.getElementById('summary-table');if(!t)return;
var hs=t.tHead.rows[0].cells;function val(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
v=v.replace(/[%,\\u00d7+]/g,'').trim();var n=parseFloat(v);return isNaN(n)?null:n}
function txt(td){return td.textContent.trim().toLowerCase()}
Array.prototype.forEach.call(hs,function(h,c){h.addEventListener('click',function(){
var asc=h.getAttribute('aria-sort')!=='ascending';Array.prototype.forEach.call(hs,function(x){x.removeAttribute('aria-sort')});
h.setAttribute('aria-sort',asc?'ascending':'descending');var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
rows.sort(function(p,q){var a=val(p.cells[c]),z=val(q.cells[c]);if(a===null&&z===null){a=txt(p.cells[c]);z=txt(q.cells[c]);
return a<z?(asc?-1:1):a>z?(asc?1:-1):0}if(a===null)return 1;if(z===null)return -1;return asc?a-z:z-a});
rows.forEach(function(r){b.appendChild(r)})})})})();
(function(){function mount(d){var t=d.querySelector('template');if(t)t.parentNode.replaceChild(t.content,t)}
Array.prototype.forEach.call(document.querySelectorAll('details.lazy'),function(d){
d.addEventListener('toggle',function(){if(d.open)mount(d)})});
function openHash(){var e=location.hash&&document.getElementById(location.hash.slice(1));
var d=e&&e.querySelector('details.lazy');if(d)d.open=true}
window.addEventListener('hashchange',openHash);openHash()})();"""


def csp() -> str:
    """The page's Content-Security-Policy: the inline script by its hash, nothing else."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
