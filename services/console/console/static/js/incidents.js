// incidents: being built (issue 20)
export async function render(main) { main.textContent = ""; }
