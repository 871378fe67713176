from fmeaa.cli import app

app(prog_name="fmeaa")
