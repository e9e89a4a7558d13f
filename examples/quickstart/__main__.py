from examples.quickstart.main import app

app.run()
