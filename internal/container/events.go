package container

// event appends action on c to the store's event log, with the
// container's labels among the attributes as docker has them. Failing to
// log never fails the operation.
func (m *Manager) event(c Container, action string, attrs map[string]string) {
	a := c.Labels()
	for k, v := range attrs {
		a[k] = v
	}
	_ = m.events.Container(action, c.ID, c.Name, c.ImageRef, a)
}

// Event records an action a command did on c as a whole (restart).
func (m *Manager) Event(c Container, action string) { m.event(c, action, nil) }
