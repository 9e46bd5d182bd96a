"""The local AWS: the synthesized assembly brought up on moto, as each service would run it."""
