@echo off
rem Start the sam3-api server (Windows mirror of start_server.sh): runs setup.bat (instant when the
rem requirement files are unchanged), then app.py in .venv. HOST, PORT, LOG_LEVEL, HF_TOKEN and every SAM3_*
rem variable are read from the environment, e.g.
rem   set SAM3_MODEL=dev-tiny
rem   start_server.bat
setlocal EnableExtensions
cd /d "%~dp0"

call "%~dp0setup.bat"
if errorlevel 1 (
    echo start_server.bat: setup failed; see the messages above 1>&2
    exit /b 1
)

echo [start] python app.py
".venv\Scripts\python.exe" app.py %*
exit /b %ERRORLEVEL%
