package tunnel

// The reflection rate limit, for tests that check the bound it keeps.
const (
	ReflectEvery = reflectEvery
	ReflectBurst = reflectBurst
)

// CreateStack is SystemEnv's netstack device, which needs no privilege.
var CreateStack = createStack
