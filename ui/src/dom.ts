// A tiny element builder. Text always goes in as text, never as HTML: whatever a client or
// QuantConnect sends is shown, not run.

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  id?: string;
  title?: string;
  data?: Record<string, string>;
  attrs?: Record<string, string>;
  on?: Partial<{ [K in keyof HTMLElementEventMap]: (event: HTMLElementEventMap[K]) => void }>;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props) {
    if (props.class) element.className = props.class;
    if (props.id) element.id = props.id;
    if (props.title) element.title = props.title;
    for (const [key, value] of Object.entries(props.data ?? {})) element.dataset[key] = value;
    for (const [key, value] of Object.entries(props.attrs ?? {})) element.setAttribute(key, value);
    for (const [name, handler] of Object.entries(props.on ?? {})) {
      element.addEventListener(name, handler as EventListener);
    }
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's content. */
export function fill(parent: HTMLElement, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

export function input(id: string, attrs: Record<string, string> = {}): HTMLInputElement {
  return h("input", { id, attrs: { autocomplete: "off", spellcheck: "false", ...attrs } });
}

export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "label" }, label), control, hint ? h("small", null, hint) : null);
}

export function button(text: string, onClick: () => void, cls = "", id?: string): HTMLButtonElement {
  return h("button", { class: cls, id, attrs: { type: "button" }, on: { click: () => onClick() } }, text);
}

/** A message box for a view: errors in plain words, successes briefly. */
export function notice(kind: "error" | "ok" | "info", text: string): HTMLElement {
  return h("div", { class: `notice ${kind}`, attrs: { role: kind === "error" ? "alert" : "status" } }, text);
}
